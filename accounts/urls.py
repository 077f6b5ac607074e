"""The accounts pages: two-factor set-up under /account/, Users under /administration/."""

from __future__ import annotations

from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("account/", views.account, name="account"),
    path("account/two-factor/", views.two_factor_page, name="two_factor"),
    path("account/two-factor/backup-codes/", views.backup_codes, name="backup_codes"),
    path("administration/users/", views.users_list, name="users"),
    path("administration/users/add/", views.user_add, name="user_add"),
    path("administration/users/<int:user_id>/action/", views.user_action, name="user_action"),
    path("administration/users/<int:user_id>/", views.user_edit, name="user_edit"),
]
