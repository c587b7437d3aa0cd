from django.contrib import admin
from django.urls import path

from shop import views

urlpatterns = [
    path("", views.index),
    path("healthz", views.healthz),
    path("media/<str:name>", views.media),
    path("jobs", views.jobs),
    path("admin/", admin.site.urls),
]
