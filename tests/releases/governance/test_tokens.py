"""API tokens: creation, verification, revocation, expiry, and the ``manage.py token`` command."""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from releases.errors import InvalidRequest, NotFound
from releases.governance import tokens
from releases.models import ApiToken, AuditEvent
from tests import factories

pytestmark = pytest.mark.django_db


def test_it_creates_a_token_and_stores_only_its_hash(admin):
    row, token = tokens.create(admin, "ci")

    assert token.startswith(f"swy_{row.prefix}_")
    assert len(row.prefix) == 8
    assert len(token.split("_", 2)[2]) >= 32
    stored = ApiToken.objects.get(pk=row.pk)
    assert stored.hashed == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(stored.__dict__)
    assert AuditEvent.objects.filter(action="token.create", object_id=str(row.pk)).exists()


def test_it_gives_every_token_a_different_secret(admin):
    first = tokens.create(admin, "ci")[1]
    second = tokens.create(admin, "ci")[1]

    assert first != second


def test_it_verifies_a_live_token_and_records_its_use(admin):
    row, token = tokens.create(admin, "ci")

    verified = tokens.verify(token, address="10.0.0.7")

    assert verified.pk == row.pk
    assert verified.user == admin
    row.refresh_from_db()
    assert row.last_used_at is not None
    assert row.last_used_from == "10.0.0.7"


def test_it_reads_the_token_and_its_user_as_the_orm_would(admin, dev):
    row, token = tokens.create(admin, "ci", scopes=["read"], environments=["dev"])
    tokens.verify(token, address="10.0.0.1")

    found = tokens._lookup(row.prefix)
    expected = ApiToken.objects.select_related("user").get(prefix=row.prefix)

    def fields(obj):
        return {k: v for k, v in vars(obj).items() if k != "_state"}

    assert fields(found) == fields(expected) and found.scopes == ["read"]
    assert found.last_used_from == "10.0.0.1" and found.last_used_at is not None
    assert fields(found.user) == fields(expected.user) and found.user.pk == admin.pk
    assert not found._state.adding  # saved rows, as the ORM gives them
    assert tokens._lookup("nosuchpx") is None


def test_it_records_last_use_at_most_once_a_minute(admin, django_assert_num_queries):
    _, token = tokens.create(admin, "ci")
    tokens.verify(token, address="10.0.0.1")

    with django_assert_num_queries(1):  # the lookup only: no write within the minute
        tokens.verify(token, address="10.0.0.2")

    ApiToken.objects.update(last_used_at=timezone.now() - timedelta(minutes=2))
    tokens.verify(token, address="10.0.0.3")
    assert ApiToken.objects.get().last_used_from == "10.0.0.3"


@pytest.mark.parametrize(
    "presented",
    [
        "",
        "swy_",
        "not-a-token",
        "swy_abc_" + "x" * 40,  # prefix too short
        "swy_ABCDEFGH_" + "x" * 40,  # prefix outside the alphabet
        "swy_abcdefgh_short",  # secret too short
        "swy_abcdefgh_" + "x" * 500,  # absurdly long
    ],
)
def test_it_refuses_a_malformed_token(admin, presented):
    with pytest.raises(tokens.TokenRefused, match="malformed"):
        tokens.verify(presented)


def test_it_refuses_a_token_with_the_right_prefix_and_a_wrong_secret(admin):
    row, token = tokens.create(admin, "ci")
    forged = f"swy_{row.prefix}_{'A' * 43}"

    with pytest.raises(tokens.TokenRefused, match="not valid"):
        tokens.verify(forged)


def test_it_refuses_an_unknown_token(admin):
    with pytest.raises(tokens.TokenRefused, match="not valid"):
        tokens.verify("swy_abcdefgh_" + "A" * 43)


def test_it_refuses_a_revoked_token_and_says_so(admin):
    row, token = tokens.create(admin, "ci")

    tokens.revoke(row.prefix)

    with pytest.raises(tokens.TokenRefused, match="was revoked") as caught:
        tokens.verify(token)
    assert caught.value.status == 401
    assert caught.value.code == "not_authenticated"
    assert AuditEvent.objects.filter(action="token.revoke").count() == 1


def test_revoking_twice_changes_nothing(admin):
    row, _ = tokens.create(admin, "ci")
    first = tokens.revoke(row.prefix).revoked_at

    again = tokens.revoke(f"swy_{row.prefix}_")

    assert again.revoked_at == first
    assert AuditEvent.objects.filter(action="token.revoke").count() == 1


def test_it_refuses_an_expired_token_and_says_so(admin):
    _, token = tokens.create(admin, "ci", expires_at=timezone.now() - timedelta(seconds=1))

    with pytest.raises(tokens.TokenRefused, match="expired"):
        tokens.verify(token)


def test_it_accepts_a_token_before_it_expires(admin):
    _, token = tokens.create(admin, "ci", expires_at=timezone.now() + timedelta(days=1))

    assert tokens.verify(token).name == "ci"


def test_it_refuses_a_token_of_a_deactivated_user(admin):
    _, token = tokens.create(admin, "ci")
    admin.is_active = False
    admin.save()

    with pytest.raises(tokens.TokenRefused, match="deactivated"):
        tokens.verify(token)


def test_it_refuses_unknown_scopes_and_an_empty_name(admin):
    with pytest.raises(InvalidRequest, match="Unknown scope"):
        tokens.create(admin, "ci", scopes=["root"])
    with pytest.raises(InvalidRequest, match="needs a name"):
        tokens.create(admin, "  ")


def test_revoking_an_unknown_prefix_is_not_found(admin):
    with pytest.raises(NotFound):
        tokens.revoke("zzzzzzzz")


# --- manage.py token --------------------------------------------------------------------------


def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("token", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_the_command_prints_a_working_token_alone_on_its_last_line(admin):
    out, err = run("create", "--user", "admin", "--name", "ci", "--scope", "read")

    token = out.strip().splitlines()[-1]
    assert token.startswith("swy_") and " " not in token
    row = tokens.verify(token)
    assert row.name == "ci" and row.scopes == ["read"] and row.expires_at is None
    assert "not shown again" in err


def test_the_command_sets_an_expiry_in_days(admin):
    out, _ = run("create", "--user", "admin", "--name", "ci", "--expires-days", "30")

    row = tokens.verify(out.strip().splitlines()[-1])
    assert timedelta(days=29) < row.expires_at - timezone.now() <= timedelta(days=30)


def test_the_command_refuses_an_unknown_user(db):
    with pytest.raises(CommandError, match="No user"):
        run("create", "--user", "nobody", "--name", "ci")


def test_the_command_lists_tokens_without_their_secrets(admin):
    deployer = factories.make_user("deployer", superuser=False)
    row, token = tokens.create(deployer, "laptop")
    tokens.revoke(row.prefix)
    tokens.create(admin, "ci")

    out, _ = run("list")

    assert "laptop" in out and "deployer" in out and "revoked" in out
    assert "ci" in out and "active" in out
    assert token.split("_", 2)[2] not in out


def test_the_command_revokes_by_prefix(admin):
    row, token = tokens.create(admin, "ci")

    out, _ = run("revoke", row.prefix)

    assert "Revoked" in out
    with pytest.raises(tokens.TokenRefused, match="revoked"):
        tokens.verify(token)


def test_the_command_reports_an_unknown_prefix(admin):
    with pytest.raises(CommandError, match="No API token"):
        run("revoke", "zzzzzzzz")


# --- the admin --------------------------------------------------------------------------------


def test_the_admin_creates_a_token_and_shows_its_secret_once(client, admin):
    client.force_login(admin)

    response = client.post(
        "/admin/releases/apitoken/add/",
        {"user": admin.pk, "name": "deploy-bot", "scopes": ["write"]},
        follow=True,
    )

    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    token = next(word for m in shown for word in m.split() if word.startswith("swy_"))
    row = tokens.verify(token)
    assert row.name == "deploy-bot" and row.scopes == ["write"]
    assert ApiToken.objects.count() == 1
    page = client.get(f"/admin/releases/apitoken/{row.pk}/change/")
    assert page.status_code == 200 and token not in page.content.decode()


def test_the_admin_revokes_tokens(client, admin):
    row, token = tokens.create(admin, "ci")
    client.force_login(admin)

    client.post(
        "/admin/releases/apitoken/",
        {"action": "revoke_tokens", "_selected_action": [row.pk]},
    )

    with pytest.raises(tokens.TokenRefused, match="revoked"):
        tokens.verify(token)
