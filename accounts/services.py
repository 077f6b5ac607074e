"""Users and their administrator role: add, invite, grant, remove, deactivate.

An administrator is an active user holding Manage SMTP's change permission: a superuser,
a member of the "SMTP administrators" group, or a holder of the permission itself. The
console grants the role through the group; removing it takes away all three. The last
active administrator can neither lose the role nor be deactivated: nobody would be left
to manage the console.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from importlib import import_module

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group, Permission
from django.contrib.auth.tokens import default_token_generator
from django.contrib.sessions.models import Session
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.views.decorators.debug import sensitive_variables
from django_otp.plugins.otp_totp.models import TOTPDevice

from activity.models import Kind
from activity.service import activity_record
from smtp_settings.links import ONE_TIME_LINK_HEADER, console_url
from smtp_settings.permissions import ADMINISTER_PERMISSION, administrators

ADMINISTRATORS_GROUP = "SMTP administrators"


class LastAdministrator(Exception):
    """The change would leave the console without an active administrator."""


class InvitationRefused(Exception):
    """The user has a password already (or cannot sign in): an invitation's link would let
    whoever reads the mail choose a new one."""


def _permission() -> Permission:
    app_label, codename = ADMINISTER_PERMISSION.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


def administrators_group() -> Group:
    """The group that grants the role, made on first use (permissions exist only after
    migrate has run, so a migration cannot rely on them)."""
    group, _ = Group.objects.get_or_create(name=ADMINISTRATORS_GROUP)
    group.permissions.add(_permission())
    return group


def _administrators_lock() -> None:
    """Serialise every change that can take an administrator away on ONE row, the group's,
    until the transaction ends. Locking the administrators' own rows is not enough: two
    administrators removing each other each lock a different row, both still see the
    other one, and both succeed (PostgreSQL's READ COMMITTED). SQLite serialises whole
    transactions already (``transaction_mode`` IMMEDIATE), where this is a no-op."""
    group = administrators_group()
    Group.objects.select_for_update().get(pk=group.pk)


def _refuse_if_last(user: AbstractBaseUser, doing: str) -> None:
    """Counts the active administrators after taking the lock, so that the count includes
    whatever another change committed while this one waited. Call inside the transaction
    that makes the change."""
    _administrators_lock()
    ids = set(administrators().values_list("pk", flat=True))
    if user.pk in ids and ids == {user.pk}:
        raise LastAdministrator(
            f"{user.get_username()} is the only active administrator, so they cannot be "
            f"{doing}: make someone else an administrator first."
        )


@dataclass(frozen=True)
class UserRow:
    user: AbstractBaseUser
    is_administrator: bool
    two_factor: bool
    invited: bool
    last_login: datetime | None
    # The only active administrator: neither the role nor the account can be taken away.
    last_administrator: bool = False


def users_overview() -> list[UserRow]:
    """Every user with their role and second factor, in one query."""
    users = list(
        get_user_model()
        .objects.annotate(
            _administrator=Exists(administrators(active_only=False).filter(pk=OuterRef("pk"))),
            _two_factor=Exists(TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)),
        )
        .order_by("-is_active", "username")
    )
    active_admin_ids = {user.pk for user in users if user._administrator and user.is_active}
    return [
        UserRow(
            user=user,
            is_administrator=user._administrator,
            two_factor=user._two_factor,
            invited=not user.has_usable_password(),
            last_login=user.last_login,
            last_administrator=active_admin_ids == {user.pk},
        )
        for user in users
    ]


def _is_administrator(user: AbstractBaseUser) -> bool:
    return administrators(active_only=False).filter(pk=user.pk).exists()


@sensitive_variables("password")
def user_add(
    *,
    username: str,
    email: str,
    first_name: str = "",
    last_name: str = "",
    administrator: bool,
    password: str = "",
    by: AbstractBaseUser,
    address: str | None = None,
) -> AbstractBaseUser:
    """Create a user. Without a password, they get an e-mail (through the outbox) with a
    link to choose one, valid as long as a password-reset link."""
    with transaction.atomic():
        user = get_user_model().objects.create_user(
            username=username,
            email=email,
            password=password or None,
            first_name=first_name,
            last_name=last_name,
        )
        if administrator:
            user.groups.add(administrators_group())
        role = "administrator" if administrator else "user without administrator rights"
        how = "with a password set by " + by.get_username() if password else "invited by e-mail"
        activity_record(
            kind=Kind.USER_ADDED,
            summary=f"Added {username} <{email}> as {role}, {how}.",
            actor=by,
            address=address,
        )
        if not password:
            user_invite(user=user, by=by, address=address, record=False)
    return user


def user_invite(
    *,
    user: AbstractBaseUser,
    by: AbstractBaseUser | None,
    address: str | None = None,
    record: bool = True,
) -> None:
    """Send (again) the e-mail with a link to choose a password; only to someone who has
    none yet, and may sign in. ``by`` None: they asked for it themselves, with "Forgot your
    password?" before they had one."""
    if user.has_usable_password():
        raise InvitationRefused(
            f"{user.get_username()} has a password already, so no invitation was sent: "
            "they can use Forgot your password? on the sign-in page."
        )
    if not user.is_active:
        raise InvitationRefused(
            f"{user.get_username()} is deactivated, so no invitation was sent: reactivate "
            "them first."
        )
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    link = console_url(reverse("password_reset_confirm", args=[uid, token]))
    context = {"user": user, "by": by, "link": link}
    one_time_link_send(
        subject=render_to_string("accounts/invitation_subject.txt", context).strip(),
        body=render_to_string("accounts/invitation_email.txt", context),
        to=user.email,
    )
    if record:
        asked = (
            "" if by is not None else " (they asked on the sign-in page, having no password yet)"
        )
        activity_record(
            kind=Kind.USER_ADDED,
            summary=f"Sent {user.get_username()} a new invitation to <{user.email}>{asked}.",
            actor=by,
            address=address,
        )


def user_details_change(
    *,
    user: AbstractBaseUser,
    changed: dict[str, str],
    by: AbstractBaseUser,
    address: str | None = None,
) -> None:
    """Save a user's new name or e-mail (``changed``: only the fields that changed)."""
    if not changed:
        return
    for name, value in changed.items():
        setattr(user, name, value)
    user.save(update_fields=list(changed))
    what = ", ".join(
        f"e-mail to <{value}>" if name == "email" else f"{name.replace('_', ' ')}"
        for name, value in changed.items()
    )
    whose = "their own" if by.pk == user.pk else f"{user.get_username()}'s"
    activity_record(
        kind=Kind.USER_CHANGED,
        summary=f"Changed {whose} {what}.",
        actor=by,
        address=address,
    )


def users_invited_without_password(*, email: str) -> list[AbstractBaseUser]:
    """Active users with this address who have not chosen a password yet: Django's reset
    form leaves them out (it mails only users with a usable password)."""
    return [
        user
        for user in get_user_model()._default_manager.filter(email__iexact=email, is_active=True)
        if not user.has_usable_password()
    ]


def one_time_link_send(*, subject: str, body: str, to: str) -> None:
    """Mail that carries a one-time link to choose a password (a reset, an invitation),
    marked so that the outbox page does not show its text. Delivered as written."""
    EmailMessage(subject, body, None, [to], headers={ONE_TIME_LINK_HEADER: "yes"}).send()


def user_set_administrator(
    *,
    user: AbstractBaseUser,
    administrator: bool,
    by: AbstractBaseUser,
    address: str | None = None,
) -> bool:
    """Grant or remove the role; returns whether anything changed."""
    with transaction.atomic():
        if administrator == _is_administrator(user):
            return False
        if administrator:
            user.groups.add(administrators_group())
        else:
            _refuse_if_last(user, "removed from the administrators")
            permission = _permission()
            user.groups.remove(*Group.objects.filter(permissions=permission))
            user.user_permissions.remove(permission)
            if user.is_superuser or user.is_staff:
                user.is_superuser = user.is_staff = False
                user.save(update_fields=["is_superuser", "is_staff"])
        activity_record(
            kind=Kind.ROLE_GRANTED if administrator else Kind.ROLE_REMOVED,
            summary=(
                f"Made {user.get_username()} an administrator."
                if administrator
                else f"Removed the administrator role from {user.get_username()}."
            ),
            actor=by,
            address=address,
        )
    return True


def user_set_active(
    *,
    user: AbstractBaseUser,
    active: bool,
    by: AbstractBaseUser,
    address: str | None = None,
) -> bool:
    """Deactivate (they can no longer sign in, and their open sessions stop working) or
    reactivate; returns whether anything changed."""
    with transaction.atomic():
        if user.is_active == active:
            return False
        if not active:
            _refuse_if_last(user, "deactivated")
        user.is_active = active
        user.save(update_fields=["is_active"])
        activity_record(
            kind=Kind.USER_REACTIVATED if active else Kind.USER_DEACTIVATED,
            summary=(
                f"Reactivated {user.get_username()}."
                if active
                else f"Deactivated {user.get_username()}."
            ),
            actor=by,
            address=address,
        )
    if not active:
        _end_sessions(user)
    return True


def _end_sessions(user: AbstractBaseUser) -> None:
    """Delete the user's sessions through the session engine, so that the cached copies go
    too (``cached_db``): reactivating them later must not bring an old session back."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    user_id = str(user.pk)
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if session.get_decoded().get("_auth_user_id") == user_id:
            store(session.session_key).delete()
