"""The worker (`app.processes: [{name: worker, command: [python3, manage.py, work]}]`):
takes queued jobs from the database, one at a time, and marks each done
with the release it ran from. SIGTERM (a switch's restart) ends it after
the job at hand."""

import os
import signal
import time

from django.core.management.base import BaseCommand
from django.db import transaction

from shop.models import Job


class Command(BaseCommand):
    help = "Runs queued jobs until SIGTERM."

    def handle(self, *args, **options):
        running = [True]
        signal.signal(signal.SIGTERM, lambda *_: running.clear())
        release = os.environ.get("INFRA_RELEASE", "unknown")
        self.stdout.write(f"worker: release {release}")
        while running:
            with transaction.atomic():
                job = Job.objects.select_for_update(skip_locked=True).filter(done_by="").first()
                if job:
                    job.done_by = release
                    job.save(update_fields=["done_by"])
            if not job:
                time.sleep(0.5)
