from django.db import models


class Hit(models.Model):
    """The counter every request to `/` bumps: proof the database answers."""

    count = models.BigIntegerField(default=0)


class Job(models.Model):
    """Work for the worker process (`app.processes`), queued in the
    database: the stack's own broker."""

    payload = models.CharField(max_length=200)
    done_by = models.CharField(max_length=64, blank=True)
    created = models.DateTimeField(auto_now_add=True)
