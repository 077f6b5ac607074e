"""Password change for the signed-in user, and password reset by e-mail through the outbox:
Django's own views, with the change form's current password counted like a sign-in, the
reset form rate-limited (each request sends mail), the mail marked as carrying a one-time
link, and each step recorded in the activity trail."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordResetForm
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template import loader
from django.urls import reverse

from accounts import services, signin_flow
from accounts.signin_activity import client_address
from accounts.throttle import throttle_hit
from activity.models import Kind
from activity.service import activity_record
from smtp_settings.links import console_url

logger = logging.getLogger(__name__)

RESETS_PER_ADDRESS = 3
RESET_WINDOW_SECONDS = 15 * 60


# -- the trail --------------------------------------------------------------------------


def password_record_changed(*, user: AbstractBaseUser, address: str | None = None) -> None:
    activity_record(
        kind=Kind.PASSWORD_CHANGED,
        summary="Changed their password; their other sessions ended.",
        actor=user,
        address=address,
    )


def password_record_reset_requested(*, email: str, address: str | None = None) -> None:
    # The same words whether or not an account has the address: the trail must not become a
    # way to learn which addresses have accounts. Nobody is named as the actor for that reason.
    activity_record(
        kind=Kind.PASSWORD_RESET_REQUESTED,
        summary=f"Password reset e-mail requested for <{email}>.",
        address=address,
    )


def password_record_reset_completed(*, user: AbstractBaseUser, address: str | None = None) -> None:
    activity_record(
        kind=Kind.PASSWORD_RESET_COMPLETED,
        summary="Chose a new password through an e-mailed link (password reset or invitation).",
        actor=user,
        address=address,
    )


# -- the views --------------------------------------------------------------------------


class GuardedPasswordChangeView(auth_views.PasswordChangeView):
    """Django's password change, where a wrong current password counts as a failed sign-in:
    a stolen session cannot guess the password here without end."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        credentials = signin_flow.signin_credentials(user=request.user)
        if signin_flow.signin_is_locked(request=request, credentials=credentials):
            return signin_flow.signin_end_locked(request=request, user=request.user)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form: Any) -> HttpResponse:
        if form.has_error("old_password", "password_incorrect"):
            user = self.request.user
            if signin_flow.signin_password_failed(
                request=self.request, user=user, doing="Change password"
            ):
                return signin_flow.signin_end_locked(request=self.request, user=user)
        return super().form_invalid(form)

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        password_record_changed(user=form.user, address=client_address(self.request))
        return response


class OneTimeLinkPasswordResetForm(PasswordResetForm):
    """Django's reset form, whose mail is marked as carrying a one-time link (the outbox page
    does not show such a message's text). Someone invited who has not chosen a password yet
    gets the invitation again: Django's form would send them nothing, while the page says a
    link went (it must say the same for every address)."""

    def save(self, *args: Any, **kwargs: Any) -> None:
        super().save(*args, **kwargs)
        request = kwargs.get("request")
        address = client_address(request) if request is not None else None
        for user in services.users_invited_without_password(email=self.cleaned_data["email"]):
            try:
                services.user_invite(user=user, by=None, address=address)
            except Exception:  # as below: no error page that only some addresses would get
                logger.exception("Failed to queue the invitation again for user %s", user.pk)

    def send_mail(
        self,
        subject_template_name: str,
        email_template_name: str,
        context: dict[str, Any],
        from_email: str | None,
        to_email: str,
        html_email_template_name: str | None = None,
    ) -> None:
        # The link comes from SEI_CONSOLE_URL: Django's ``domain`` and ``protocol`` are the
        # request's Host header, which the person asking for the reset chooses.
        context = {
            **context,
            "link": console_url(
                reverse("password_reset_confirm", args=[context["uid"], context["token"]])
            ),
        }
        subject = "".join(loader.render_to_string(subject_template_name, context).splitlines())
        body = loader.render_to_string(email_template_name, context)
        try:
            services.one_time_link_send(subject=subject, body=body, to=to_email)
        except Exception:
            # As Django's form does: an error page only for addresses that have an account
            # would tell which ones do.
            user = context.get("user")
            logger.exception(
                "Failed to queue the password reset e-mail for user %s", getattr(user, "pk", None)
            )


class ThrottledPasswordResetView(auth_views.PasswordResetView):
    """At most three reset mails per client address a quarter of an hour: the form sends
    mail to whatever address is typed, and must not become a way to flood a mailbox."""

    form_class = OneTimeLinkPasswordResetForm

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        key = f"password-reset:{client_address(request) or ''}"
        if throttle_hit(key=key, window_seconds=RESET_WINDOW_SECONDS) > RESETS_PER_ADDRESS:
            messages.error(
                request, "Too many reset requests from here: try again in a quarter of an hour."
            )
            return redirect("password_reset")
        return super().post(request, *args, **kwargs)

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        password_record_reset_requested(
            email=form.cleaned_data["email"], address=client_address(self.request)
        )
        return response


class RecordedPasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Django's page behind the e-mailed link (reset or invitation), recorded when used."""

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        password_record_reset_completed(user=form.user, address=client_address(self.request))
        return response
