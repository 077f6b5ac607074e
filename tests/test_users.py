"""Administration > Users: adding and inviting people, granting and removing the
administrator role, deactivating, and the guard that keeps one active administrator."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts import services
from activity.models import Entry, Kind

PASSWORD = "correct horse 42"  # admin_user's (tests/conftest.py)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _mail_in_memory(settings: Any) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def act(client: Client, user: User, action: str) -> Any:
    return client.post(
        reverse("accounts:user_action", args=[user.pk]), {"action": action}, follow=True
    )


def signs_in(client: Client, username: str, password: str) -> bool:
    response = client.post(reverse("login"), {"username": username, "password": password})
    return response.status_code == 302


def is_admin(user: User) -> bool:
    return User.objects.get(pk=user.pk).has_perm("smtp_settings.change_smtpsettings")


def test_the_users_page_lists_everyone_with_their_role(
    admin_client: Client, delegated_admin: User, plain_user: User
) -> None:
    page = admin_client.get(reverse("accounts:users")).content.decode()
    for name in ("root-admin", "mail-admin", "someone"):
        assert f'id="user-{name}"' in page
    row = page.split('id="user-someone"')[1].split("</tr>")[0]
    assert ">User<" in row and "Make administrator" in row


def test_adding_an_administrator_with_a_password_lets_them_administer(
    admin_client: Client, admin_user: User
) -> None:
    response = admin_client.post(
        reverse("accounts:user_add"),
        {
            "username": "new-admin",
            "email": "new-admin@example.test",
            "administrator": "on",
            "password1": "a fresh long passphrase 9",
            "password2": "a fresh long passphrase 9",
        },
    )
    assert response.status_code == 302
    added = User.objects.get(username="new-admin")
    assert is_admin(added) and added.groups.filter(name="SMTP administrators").exists()
    client = Client()
    assert signs_in(client, "new-admin", "a fresh long passphrase 9")
    assert client.get(reverse("smtp_settings:manage")).status_code == 200
    entry = Entry.objects.get(kind=Kind.USER_ADDED)
    assert entry.actor == admin_user and "new-admin" in entry.summary
    assert "a fresh long passphrase" not in entry.summary
    assert mail.outbox == []  # a password was given: no invitation


def test_adding_without_a_password_sends_an_invitation_that_sets_one(
    admin_client: Client,
) -> None:
    response = admin_client.post(
        reverse("accounts:user_add"),
        {"username": "invitee", "email": "invitee@example.test", "administrator": ""},
    )
    assert response.status_code == 302
    invitee = User.objects.get(username="invitee")
    assert not invitee.has_usable_password() and not is_admin(invitee)
    (message,) = mail.outbox
    assert message.to == ["invitee@example.test"] and "root-admin" in message.body
    path = re.search(r"https?://[^/\s]+(/login/reset/\S+/\S+/)", message.body).group(1)
    browser = Client()
    form = browser.get(path, follow=True)
    # An invitee has no password yet: theirs is not a "new" one.
    assert "<h1>Choose your password</h1>" in form.content.decode()
    done = browser.post(
        form.redirect_chain[-1][0],
        {"new_password1": "chosen by me 2026", "new_password2": "chosen by me 2026"},
    )
    assert done.status_code == 302
    assert User.objects.get(pk=invitee.pk).check_password("chosen by me 2026")


def test_forgot_password_before_choosing_one_sends_the_invitation_again(
    admin_client: Client,
) -> None:
    admin_client.post(
        reverse("accounts:user_add"),
        {"username": "invitee", "email": "invitee@example.test", "administrator": ""},
    )
    mail.outbox.clear()
    # The invitation's link ran out; the invitee tries the sign-in page's reset.
    response = Client().post(reverse("password_reset"), {"email": "INVITEE@example.test"})
    assert response.status_code == 302
    (message,) = mail.outbox
    assert message.to == ["invitee@example.test"]
    assert "You asked to choose a password" in message.body
    assert 'use "Forgot your password?"' in message.body
    path = re.search(r"https?://[^/\s]+(/login/reset/\S+/\S+/)", message.body).group(1)
    browser = Client()
    form = browser.get(path, follow=True)
    done = browser.post(
        form.redirect_chain[-1][0],
        {"new_password1": "chosen by me 2026", "new_password2": "chosen by me 2026"},
    )
    assert done.status_code == 302
    assert User.objects.get(username="invitee").check_password("chosen by me 2026")
    entry = Entry.objects.filter(kind=Kind.USER_ADDED).order_by("-at", "-id").first()
    assert entry is not None and "asked on the sign-in page" in entry.summary


def test_a_bad_new_user_is_refused_next_to_its_fields(admin_client: Client) -> None:
    response = admin_client.post(
        reverse("accounts:user_add"),
        {
            "username": "ROOT-ADMIN",
            "email": "",
            "password1": "short",
            "password2": "other",
        },
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "already exists" in page and "The two passwords differ" in page
    assert 'id="id_email_error"' in page
    assert User.objects.count() == 1


def test_granting_and_removing_the_role_through_the_page(
    admin_client: Client, plain_user: User, admin_user: User
) -> None:
    assert "is now an administrator" in act(admin_client, plain_user, "grant").content.decode()
    assert is_admin(plain_user)
    assert "no longer an administrator" in act(admin_client, plain_user, "revoke").content.decode()
    assert not is_admin(plain_user)
    kinds = list(Entry.objects.order_by("pk").values_list("kind", "actor_name"))
    assert (Kind.ROLE_GRANTED, "root-admin") in kinds
    assert (Kind.ROLE_REMOVED, "root-admin") in kinds


def test_removing_the_role_takes_away_superuser_and_direct_permission(
    admin_client: Client, delegated_admin: User, admin_user: User
) -> None:
    other = User.objects.create_superuser("second-root", "s@example.test", "x long pass 1")
    act(admin_client, other, "revoke")
    act(admin_client, delegated_admin, "revoke")
    assert not is_admin(other) and not User.objects.get(pk=other.pk).is_superuser
    assert not is_admin(delegated_admin)


def test_deactivating_stops_sign_in_and_open_sessions(
    admin_client: Client, delegated_admin: User
) -> None:
    theirs = Client()
    theirs.force_login(delegated_admin)
    assert theirs.get(reverse("smtp_settings:manage")).status_code == 200
    assert "was deactivated" in act(admin_client, delegated_admin, "deactivate").content.decode()
    assert theirs.get(reverse("smtp_settings:manage")).status_code == 302  # signed out
    assert not signs_in(Client(), "mail-admin", "correct horse 42")
    act(admin_client, delegated_admin, "reactivate")
    assert signs_in(Client(), "mail-admin", "correct horse 42")
    kinds = set(Entry.objects.values_list("kind", flat=True))
    assert {Kind.USER_DEACTIVATED, Kind.USER_REACTIVATED} <= kinds


@pytest.mark.parametrize("action", ["revoke", "deactivate"])
def test_the_last_active_administrator_cannot_remove_themselves(
    admin_client: Client, admin_user: User, plain_user: User, action: str
) -> None:
    page = act(admin_client, admin_user, action).content.decode()
    assert "only active administrator" in page
    admin_user.refresh_from_db()
    assert admin_user.is_active and is_admin(admin_user)
    assert not Entry.objects.filter(kind__startswith="user.").exists()


def test_the_guard_counts_only_active_administrators(
    admin_client: Client, admin_user: User, delegated_admin: User
) -> None:
    # Two administrators: one may go. Then the other is the last and must stay.
    act(admin_client, delegated_admin, "deactivate")
    assert "only active administrator" in act(admin_client, admin_user, "revoke").content.decode()
    assert is_admin(admin_user)
    # With a second active administrator, demoting yourself is allowed.
    act(admin_client, delegated_admin, "reactivate")
    act(admin_client, admin_user, "revoke")
    assert not is_admin(admin_user)
    assert admin_client.get(reverse("accounts:users")).status_code == 403


def test_the_guard_holds_in_the_service_too(admin_user: User, delegated_admin: User) -> None:
    services.user_set_active(user=delegated_admin, active=False, by=admin_user)
    with pytest.raises(services.LastAdministrator):
        services.user_set_administrator(user=admin_user, administrator=False, by=admin_user)
    with pytest.raises(services.LastAdministrator):
        services.user_set_active(user=admin_user, active=False, by=delegated_admin)


def test_user_actions_need_post_and_csrf(admin_user: User, plain_user: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    url = reverse("accounts:user_action", args=[plain_user.pk])
    assert client.get(url).status_code == 405
    assert client.post(url, {"action": "grant"}).status_code == 403
    assert not is_admin(plain_user)


def test_people_without_the_permission_cannot_change_users(
    client: Client, plain_user: User, admin_user: User
) -> None:
    client.force_login(plain_user)
    response = client.post(
        reverse("accounts:user_action", args=[plain_user.pk]), {"action": "grant"}
    )
    assert response.status_code == 403
    assert not is_admin(plain_user)
    add = client.post(reverse("accounts:user_add"), {"username": "x", "email": "x@example.test"})
    assert add.status_code == 403 and not User.objects.filter(username="x").exists()


def test_an_invitation_is_refused_to_someone_with_a_password(
    admin_client: Client, plain_user: User
) -> None:
    page = act(admin_client, plain_user, "invite").content.decode()
    assert "has a password already, so no invitation was sent" in page
    assert mail.outbox == []
    assert User.objects.get(pk=plain_user.pk).check_password("correct horse 42")


def test_an_invitation_waits_in_the_outbox_without_its_link_shown(
    admin_client: Client, settings: Any
) -> None:
    from post_office.models import Email

    settings.EMAIL_BACKEND = "smtp_settings.outbox.queue.OutboxBackend"
    response = admin_client.post(
        reverse("accounts:user_add"),
        {"username": "invitee", "email": "invitee@example.test"},
        follow=True,
    )
    assert "An invitation to invitee@example.test is in the outbox" in response.content.decode()
    assert "went to" not in response.content.decode()
    queued = Email.objects.get()
    link = re.search(r"/login/reset/\S+/\S+/", queued.message).group(0)
    page = admin_client.get(reverse("smtp_settings:outbox_message", args=[queued.pk]))
    assert 'id="message-withheld"' in page.content.decode()
    assert link not in page.content.decode()
    again = act(admin_client, User.objects.get(username="invitee"), "invite").content.decode()
    assert "A new invitation to invitee@example.test is in the outbox" in again
    second = Email.objects.latest("pk")
    assert (
        'id="message-withheld"'
        in admin_client.get(
            reverse("smtp_settings:outbox_message", args=[second.pk])
        ).content.decode()
    )


def test_reactivating_does_not_bring_back_old_sessions(
    admin_client: Client, delegated_admin: User
) -> None:
    theirs = Client()
    theirs.force_login(delegated_admin)
    assert theirs.get(reverse("smtp_settings:manage")).status_code == 200
    act(admin_client, delegated_admin, "deactivate")
    act(admin_client, delegated_admin, "reactivate")
    # The old cookie is signed out for good: they sign in again.
    assert theirs.get(reverse("smtp_settings:manage")).status_code == 302
    assert theirs.get(reverse("home")).status_code == 302
    # Other people's sessions stay.
    assert admin_client.get(reverse("accounts:users")).status_code == 200


def test_administrator_is_not_ticked_when_adding_a_user(admin_client: Client) -> None:
    page = admin_client.get(reverse("accounts:user_add")).content.decode()
    box = re.search(r"<input[^>]*name=\"administrator\"[^>]*>", page).group(0)
    assert "checked" not in box


def test_the_last_active_administrator_is_offered_no_way_to_lose_the_role(
    admin_client: Client, admin_user: User, delegated_admin: User
) -> None:
    def row(name: str) -> str:
        page = admin_client.get(reverse("accounts:users")).content.decode()
        return page.split(f'id="user-{name}"')[1].split("</tr>")[0]

    # Two administrators: either may go.
    assert 'value="revoke"' in row("root-admin") and 'value="deactivate"' in row("root-admin")
    act(admin_client, delegated_admin, "deactivate")
    last = row("root-admin")
    assert 'value="revoke"' not in last and 'value="deactivate"' not in last
    assert "only active administrator" in last


# -- the guard under concurrency (PostgreSQL's READ COMMITTED) ----------------------------

ROUNDS = 30


def _removal(variant: str, doer: User, target: User, lost: list[str]) -> Any:
    """What ``doer`` does to ``target`` in a thread: deactivate or demote them."""
    from django.db import connection

    def run() -> None:
        try:
            if variant == "deactivate":
                services.user_set_active(user=target, active=False, by=doer)
            else:
                services.user_set_administrator(user=target, administrator=False, by=doer)
        except services.LastAdministrator:
            lost.append(doer.username)
        finally:
            connection.close()

    return run


def _together(start: Any, job: Any) -> None:
    start.wait()
    job()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("a_does", "b_does"),
    [("deactivate", "deactivate"), ("demote", "demote"), ("deactivate", "demote")],
)
def test_two_administrators_removing_each_other_at_once_leave_one(a_does: str, b_does: str) -> None:
    import threading

    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one writing transaction at a time; the race needs PostgreSQL")
    group = services.administrators_group()
    for round_ in range(ROUNDS):
        User.objects.update(is_active=False)
        a = User.objects.create_user(f"a{round_}", password="x")
        b = User.objects.create_user(f"b{round_}", password="x")
        a.groups.add(group)
        b.groups.add(group)
        refused: list[str] = []
        start = threading.Barrier(2)
        jobs = [_removal(a_does, a, b, refused), _removal(b_does, b, a, refused)]

        threads = [threading.Thread(target=_together, args=(start, job)) for job in jobs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        left = list(services.administrators().values_list("username", flat=True))
        assert len(left) == 1, f"round {round_}: active administrators left: {left}"
        assert len(refused) == 1


def test_your_account_changes_your_name_and_with_your_password_your_email(
    admin_client: Client, admin_user: User
) -> None:
    User.objects.filter(pk=admin_user.pk).update(email="")
    page = admin_client.get(reverse("administration")).content.decode()
    assert 'id="no-email"' in page  # the first administrator, made by make run, has none
    url = reverse("accounts:account")
    refused = admin_client.post(url, {"first_name": "Root", "email": "root@example.test"})
    assert refused.status_code == 400
    assert "Type your password to change the e-mail address" in refused.content.decode()
    wrong = admin_client.post(
        url, {"first_name": "Root", "email": "root@example.test", "password": "not it"}
    )
    assert wrong.status_code == 400 and "That is not your password" in wrong.content.decode()
    assert User.objects.get(pk=admin_user.pk).email == ""
    saved = admin_client.post(
        url, {"first_name": "Root", "email": "root@sändbox.example", "password": PASSWORD}
    )
    assert saved.status_code == 302
    admin_user.refresh_from_db()
    assert (admin_user.first_name, admin_user.email) == ("Root", "root@sändbox.example")
    entry = Entry.objects.get(kind=Kind.USER_CHANGED)
    assert "their own first name, e-mail to <root@sändbox.example>" in entry.summary
    assert 'id="no-email"' not in admin_client.get(reverse("administration")).content.decode()
    # A name alone needs no password.
    assert admin_client.post(url, {"first_name": "R", "email": admin_user.email}).status_code == 302


def test_an_administrator_corrects_a_users_email_on_users(
    admin_client: Client, admin_user: User
) -> None:
    other = User.objects.create_user("alex", "alex@old.example", "a long passphrase 5")
    page = admin_client.get(reverse("accounts:users")).content.decode()
    assert reverse("accounts:user_edit", args=[other.pk]) in page
    url = reverse("accounts:user_edit", args=[other.pk])
    bad = admin_client.post(url, {"email": "not an address", "password": PASSWORD})
    assert bad.status_code == 400 and User.objects.get(pk=other.pk).email == "alex@old.example"
    done = admin_client.post(url, {"email": "alex@new.example", "password": PASSWORD})
    assert done.status_code == 302
    assert User.objects.get(pk=other.pk).email == "alex@new.example"
    assert (
        "alex's e-mail to <alex@new.example>" in Entry.objects.get(kind=Kind.USER_CHANGED).summary
    )
    assert admin_client.get(reverse("accounts:user_edit", args=[999999])).status_code == 404
    plain = Client()
    plain.force_login(other)
    assert plain.get(url).status_code == 403
