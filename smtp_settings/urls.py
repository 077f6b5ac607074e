from __future__ import annotations

from django.urls import path

from smtp_settings import views

app_name = "smtp_settings"

urlpatterns = [
    path("", views.administration_index, name="index"),
    path("smtp/", views.manage_smtp, name="manage"),
]
