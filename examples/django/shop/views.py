"""The example's pages: JSON a test can read, and uploads to `media`."""

import os
import re
import socket

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.templatetags.static import static
from django.views.decorators.csrf import csrf_exempt

from .models import Hit, Job

MEDIA_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}(\.[a-z0-9]{1,8})?")


def index(request):
    with transaction.atomic():
        Hit.objects.get_or_create(pk=1)
        Hit.objects.filter(pk=1).update(count=F("count") + 1)
        count = Hit.objects.get(pk=1).count
    return JsonResponse(
        {
            "host": socket.gethostname(),
            "count": count,
            "client": request.META.get("HTTP_X_FORWARDED_FOR", request.META.get("REMOTE_ADDR")),
            "server": request.META.get("SERVER_SOFTWARE"),
            "release": os.environ.get("INFRA_RELEASE"),
            # Where this release's files are: `/static/RELEASE/shop/site.css`.
            "stylesheet": static("shop/site.css"),
            "jobs_done": Job.objects.exclude(done_by="").count(),
        }
    )


def healthz(request):
    return HttpResponse("ok\n", content_type="text/plain")


@csrf_exempt
def media(request, name):
    if not MEDIA_NAME.fullmatch(name):
        raise Http404
    path = os.path.join(settings.MEDIA_ROOT, name)
    if request.method == "PUT":
        partial = os.path.join(settings.MEDIA_ROOT, f".{name}.partial")
        with open(partial, "wb") as upload:
            upload.write(request.body)
        os.replace(partial, path)
        return HttpResponse("stored\n", status=201)
    if not os.path.exists(path):
        raise Http404
    return FileResponse(open(path, "rb"))


@csrf_exempt
def jobs(request):
    if request.method in ("POST", "PUT"):
        job = Job.objects.create(payload=request.body.decode()[:200])
        return JsonResponse({"id": job.pk}, status=201)
    return JsonResponse({"done": list(Job.objects.exclude(done_by="").values_list("pk", "done_by"))})
