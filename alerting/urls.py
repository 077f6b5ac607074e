from __future__ import annotations

from django.urls import path

from alerting import views

app_name = "alerting"
urlpatterns = [
    path("", views.alerts, name="alerts"),
    path("<int:destination_id>/test/", views.destination_test, name="test"),
    path("<int:destination_id>/remove/", views.destination_remove, name="remove"),
]
