"""Settings of the Django example, all from the environment infra writes.

`DATABASE_URL` (`mysql://…`, read by dj-database-url into Django's MySQL
backend, mysqlclient); `STATIC_URL` and `STATIC_ROOT`, which infra sets per
release for `app.static` (each release's files at `/static/RELEASE/`);
`DJANGO_SECRET_KEY` and `DJANGO_ALLOWED_HOSTS` from `app.env`.
"""

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
DEBUG = False
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",")
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "shop",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "site_config.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
WSGI_APPLICATION = "site_config.wsgi.application"
# Without DATABASE_URL Django would quietly use nothing; fail instead.
DATABASES = {"default": dj_database_url.config(conn_max_age=60, conn_health_checks=True)}
if not DATABASES["default"]:
    raise RuntimeError("DATABASE_URL is not set: run commands with `infra run`, which gives them the app's environment")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = os.environ.get("STATIC_URL", "/static/")
STATIC_ROOT = os.environ.get("STATIC_ROOT")
# Uploads: `media` is a shared directory (`app.shared`), outliving releases.
MEDIA_ROOT = BASE_DIR / "media"
# Nginx in front sets X-Forwarded-Proto; the load balancers terminate TLS.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
USE_TZ = True
