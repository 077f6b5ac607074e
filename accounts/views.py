"""The accounts pages: the sign-in's code step, two-factor set-up, and Administration >
Users. Each parses the request, calls a service and renders; the rules live in services."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from axes.helpers import get_lockout_response
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login

from accounts import services, signin_flow, two_factor
from accounts.forms import (
    RECHECK_REFUSED_TEXT,
    AppCodeForm,
    CodeForm,
    PasswordRecheckForm,
    UserAddForm,
    UserDetailsForm,
)
from accounts.signin_activity import client_address
from smtp_settings.permissions import (
    ADMINISTER_PERMISSION,
    administrator_required,
    second_factor_verified,
)

# -- signing in -------------------------------------------------------------------------


class SignInView(auth_views.LoginView):
    """Django's sign-in; for people with two-factor sign-in set up, the password only leads
    to the code step."""

    redirect_authenticated_user = True

    def form_valid(self, form: Any) -> HttpResponse:
        user = form.get_user()
        if two_factor.two_factor_is_enrolled(user=user):
            signin_flow.signin_pending_start(
                request=self.request, user=user, next_url=self.get_success_url()
            )
            return redirect("login_code")
        response = super().form_valid(form)
        if settings.SEI_REQUIRE_2FA and user.has_perm(ADMINISTER_PERMISSION):
            # Administrators set up their second factor first thing; then on to where they
            # were going.
            return redirect(_with_next("accounts:two_factor", self.get_success_url()))
        return response


def _locked_out(request: HttpRequest, credentials: dict[str, str]) -> HttpResponse:
    signin_flow.signin_pending_forget(request=request)
    return get_lockout_response(request, None, credentials)


@require_http_methods(["GET", "POST"])
@sensitive_post_parameters("code")
def signin_code(request: HttpRequest) -> HttpResponse:
    pending = signin_flow.signin_pending(request=request)
    if pending is None:
        messages.warning(request, "Sign in again: the sign-in waiting for its code has ended.")
        return redirect("login")
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        credentials = pending.credentials
        if signin_flow.signin_is_locked(request=request, credentials=credentials):
            return _locked_out(request, credentials)
        check = two_factor.two_factor_check_code(user=pending.user, code=form.cleaned_data["code"])
        if check.device is not None:
            signin_flow.signin_complete(request=request, pending=pending, device=check.device)
            if check.used_backup_code:
                two_factor.two_factor_backup_code_used(
                    user=pending.user, address=client_address(request)
                )
                left = len(two_factor.two_factor_backup_codes(user=pending.user))
                messages.warning(
                    request,
                    f"You signed in with a backup code; {left} left. If your phone is lost, "
                    "set up the authenticator app again under Two-factor sign-in.",
                )
            return redirect(pending.next_url)
        # During django-otp's pause no code is checked, so none counts as wrong: a right one
        # typed too early is not held against the account.
        if not check.wait_seconds and signin_flow.signin_code_failed(
            request=request, credentials=credentials
        ):
            return _locked_out(request, credentials)
        form.add_error("code", _wrong_code_text(check.wait_seconds))
    return render(request, "registration/login_code.html", {"form": form, "username": pending.user})


def _wrong_code_text(wait_seconds: int) -> str:
    if wait_seconds:
        return (
            f"Too many wrong codes in a row: wait {wait_seconds} "
            f"second{pluralize(wait_seconds)}, then type the code your app shows at that moment."
        )
    return (
        "That code is not right. Type the code your app shows now (codes change every 30 "
        "seconds, and each works once), or a backup code."
    )


# -- two-factor set-up ------------------------------------------------------------------


def _next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    safe = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if safe else ""


@login_required
@require_http_methods(["GET", "POST"])
@sensitive_post_parameters("code", "password")
def two_factor_page(request: HttpRequest) -> HttpResponse:
    """Set up the app when none is; enter a code when this session has not given one (a
    session older than the set-up); otherwise the state and the backup codes' count. The
    first app and a new phone both ask for the password again."""
    user = request.user
    enrolled = two_factor.two_factor_is_enrolled(user=user)
    verified = second_factor_verified(user)
    context: dict[str, Any] = {
        "enrolled": enrolled,
        "verified": verified,
        "required": settings.SEI_REQUIRE_2FA,
        "next": _next(request),
    }
    if enrolled and not verified:
        return _verify_session(request, context)
    if enrolled:
        action = request.POST.get("action", "") if request.method == "POST" else ""
        recheck = PasswordRecheckForm(request.POST if action == "replace" else None)
        if action == "replace":
            refused = _password_recheck(request, recheck, doing="Set up a new phone")
            if isinstance(refused, HttpResponse):
                return refused
            if not refused:
                two_factor.two_factor_start_replacement(user=user)
                return redirect("accounts:two_factor")
        if action == "cancel":
            two_factor.two_factor_cancel_replacement(user=user)
            return redirect("accounts:two_factor")
        if not two_factor.two_factor_replacing(user=user):
            context["backup_left"] = len(two_factor.two_factor_backup_codes(user=user))
            context["recheck"] = recheck
            return render(request, "accounts/two_factor.html", context)
        context["replacing"] = True
    return _set_up_app(request, context)


def _password_recheck(
    request: HttpRequest, form: PasswordRecheckForm, *, doing: str
) -> HttpResponse | bool:
    """False when the password is right; True (the error is on the form) when it is not;
    the lock-out page, with the session ended, when it was one wrong password too many."""
    if not form.is_valid():
        return True
    result = signin_flow.signin_password_recheck(
        request=request, user=request.user, password=form.cleaned_data["password"], doing=doing
    )
    if result is signin_flow.Recheck.LOCKED:
        return signin_flow.signin_end_locked(request=request, user=request.user)
    if result is signin_flow.Recheck.WRONG:
        form.add_error("password", RECHECK_REFUSED_TEXT)
        return True
    return False


def _set_up_app(request: HttpRequest, context: dict[str, Any]) -> HttpResponse:
    user = request.user
    form = AppCodeForm(request.POST or None)
    # The first app binds the account to a phone: a stolen session of an administrator
    # without a second factor must not bind the thief's. (A new phone asked for the
    # password when it was started.)
    recheck = None if context.get("replacing") else PasswordRecheckForm(request.POST or None)
    device = two_factor.two_factor_pending_app(user=user)
    refused: HttpResponse | bool = False
    if request.method == "POST" and recheck is not None:
        refused = _password_recheck(request, recheck, doing="Set up two-factor sign-in")
        if isinstance(refused, HttpResponse):
            return refused
    if request.method == "POST" and not refused and form.is_valid():
        # django-otp pauses after a wrong code and refuses even the right one until then.
        wait = two_factor.two_factor_setup_wait(user=user)
        codes = None
        if not wait:
            codes = two_factor.two_factor_enrol(
                user=user, code=form.cleaned_data["code"], address=client_address(request)
            )
        if codes is not None:
            device.refresh_from_db()
            otp_login(request, device)
            two_factor.two_factor_codes_show_once(session=request.session)
            messages.success(
                request,
                "Two-factor sign-in is on. From now on, signing in asks for a code from the app.",
            )
            return redirect(_with_next("accounts:backup_codes", context["next"]))
        form.add_error(
            "code",
            _wrong_code_text(wait)
            if wait
            else "That code is not right. Check that the phone's clock is set automatically, "
            "wait for the next code and type it.",
        )
    context.update(form=form, recheck=recheck, setup=two_factor.two_factor_app_setup(device=device))
    return render(request, "accounts/two_factor.html", context)


def _verify_session(request: HttpRequest, context: dict[str, Any]) -> HttpResponse:
    user = request.user
    credentials = {"username": user.get_username()}
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if signin_flow.signin_is_locked(request=request, credentials=credentials):
            return get_lockout_response(request, None, credentials)
        check = two_factor.two_factor_check_code(user=user, code=form.cleaned_data["code"])
        if check.device is not None:
            otp_login(request, check.device)
            if check.used_backup_code:
                two_factor.two_factor_backup_code_used(user=user, address=client_address(request))
            return redirect(context["next"] or "administration")
        if not check.wait_seconds and signin_flow.signin_code_failed(
            request=request, credentials=credentials
        ):  # (during the pause no code is checked, so none counts as wrong)
            # Too many wrong codes from a signed-in session: it ends, like the sign-in would.
            logout(request)
            return get_lockout_response(request, None, credentials)
        form.add_error("code", _wrong_code_text(check.wait_seconds))
    context["form"] = form
    return render(request, "accounts/two_factor.html", context)


def _with_next(name: str, next_url: str) -> str:
    return reverse(name) + (f"?{urlencode({'next': next_url}, safe='/')}" if next_url else "")


@login_required
@require_http_methods(["GET", "POST"])
@sensitive_post_parameters("password")
def backup_codes(request: HttpRequest) -> HttpResponse:
    """The backup codes, to print or store: shown once, right after they are made, in a
    session that gave its code. New ones ask for the password again."""
    user = request.user
    if not (two_factor.two_factor_is_enrolled(user=user) and second_factor_verified(user)):
        return redirect("accounts:two_factor")
    form = PasswordRecheckForm(request.POST or None)
    if request.method == "POST":
        refused = _password_recheck(request, form, doing="Make new backup codes")
        if isinstance(refused, HttpResponse):
            return refused
        if not refused:
            two_factor.two_factor_renew_backup_codes(user=user, address=client_address(request))
            two_factor.two_factor_codes_show_once(session=request.session)
            messages.success(request, "New backup codes: the old ones no longer work.")
            return redirect(_with_next("accounts:backup_codes", _next(request)))
    codes = two_factor.two_factor_backup_codes(user=user)
    show = request.method == "GET" and two_factor.two_factor_codes_may_show(session=request.session)
    return render(
        request,
        "accounts/backup_codes.html",
        {
            "codes": codes if show else None,
            "left": len(codes),
            "form": form,
            "next": _next(request),
        },
    )


# -- Administration > Users -------------------------------------------------------------


@administrator_required
@require_http_methods(["GET"])
def users_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "accounts/users.html",
        {"rows": services.users_overview(), "required": settings.SEI_REQUIRE_2FA},
    )


@administrator_required
@require_http_methods(["GET", "POST"])
@sensitive_post_parameters("password1", "password2")
def user_add(request: HttpRequest) -> HttpResponse:
    form = UserAddForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        user = services.user_add(
            username=data["username"],
            email=data["email"],
            first_name=data.get("first_name", ""),
            last_name=data.get("last_name", ""),
            administrator=data["administrator"],
            password=data.get("password1") or "",
            by=request.user,
            address=client_address(request),
        )
        messages.success(
            request,
            f"{user.get_username()} was added."
            + (
                ""
                if data.get("password1")
                else f" An invitation to {user.email} is in the outbox and will be sent shortly."
            ),
        )
        return redirect("accounts:users")
    return render(
        request, "accounts/user_add.html", {"form": form}, status=400 if form.errors else 200
    )


_ACTIONS = {
    "grant": ("administrator", True, "{name} is now an administrator."),
    "revoke": ("administrator", False, "{name} is no longer an administrator."),
    "deactivate": ("active", False, "{name} was deactivated and can no longer sign in."),
    "reactivate": ("active", True, "{name} was reactivated."),
}


@administrator_required
@require_POST
def user_action(request: HttpRequest, user_id: int) -> HttpResponse:
    target: AbstractBaseUser = get_object_or_404(get_user_model(), pk=user_id)
    action = request.POST.get("action", "")
    address = client_address(request)
    if action == "reset_2fa":
        two_factor.two_factor_reset(user=target, by=request.user, address=address)
        messages.success(
            request,
            f"Two-factor sign-in was reset for {target.get_username()}: they set it up again "
            "the next time they open Administration.",
        )
        return redirect("accounts:users")
    if action == "invite":
        try:
            services.user_invite(
                user=target,
                by=request.user,
                address=address,
            )
        except services.InvitationRefused as refusal:
            messages.error(request, str(refusal))
            return redirect("accounts:users")
        messages.success(
            request,
            f"A new invitation to {target.email} is in the outbox and will be sent shortly.",
        )
        return redirect("accounts:users")
    if action not in _ACTIONS:
        return HttpResponse("Unknown action.", status=400)
    what, value, done = _ACTIONS[action]
    try:
        if what == "administrator":
            services.user_set_administrator(
                user=target, administrator=value, by=request.user, address=address
            )
        else:
            services.user_set_active(user=target, active=value, by=request.user, address=address)
    except services.LastAdministrator as refusal:
        messages.error(request, str(refusal))
        return redirect("accounts:users")
    messages.success(request, done.format(name=target.get_username()))
    return redirect("accounts:users")


# -- names and e-mail addresses -----------------------------------------------------------


@sensitive_post_parameters("password")
@login_required
def account(request: HttpRequest) -> HttpResponse:
    """Your account: your own name and e-mail address."""
    return _details(request, request.user, template="accounts/account.html")


@sensitive_post_parameters("password")
@administrator_required
def user_edit(request: HttpRequest, user_id: int) -> HttpResponse:
    """An administrator corrects someone's name or e-mail address."""
    user = get_object_or_404(get_user_model(), pk=user_id)
    return _details(request, user, template="accounts/user_edit.html")


def _details(request: HttpRequest, user: Any, *, template: str) -> HttpResponse:
    form = UserDetailsForm(request.POST or None, instance=user)
    if request.method == "POST" and form.is_valid():
        if "email" in form.changed_data:
            recheck = PasswordRecheckForm({"password": form.cleaned_data["password"]})
            refused = _password_recheck(request, recheck, doing="change an e-mail address")
            if isinstance(refused, HttpResponse):
                return refused
            if refused:
                form.add_error("password", recheck.errors["password"])
        if form.is_valid():
            changed = {
                name: form.cleaned_data[name] for name in form.changed_data if name != "password"
            }
            services.user_details_change(
                user=form.instance,
                changed=changed,
                by=request.user,
                address=client_address(request),
            )
            messages.success(request, "Saved." if changed else "Nothing changed.")
            return redirect(request.path)
    return render(
        request,
        template,
        {"form": form, "person": user},
        status=400 if form.errors else 200,
    )
