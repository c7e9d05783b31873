"""`make token`: a token the services accept, for the user and roles asked for."""

from __future__ import annotations

import uuid

import pytest

from common.auth import TokenVerifier
from common.settings import load_settings
from tools.dev_token import main, user_id_for


def test_a_name_or_email_gives_the_same_id_every_time_and_a_uuid_is_kept() -> None:
    assert user_id_for("Asha@Example.com ") == user_id_for("asha@example.com")
    assert user_id_for("asha@example.com") != user_id_for("ravi@example.com")
    assert uuid.UUID(user_id_for("asha@example.com")).version == 5
    given = "0F2B0C52-6A8E-4F0B-9A57-1D2C3B4A5E60"
    assert user_id_for(given) == given.lower()


def test_the_printed_token_is_accepted_with_its_user_and_roles(capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JWT_SECRET", raising=False)
    assert main(["--role", "admin", "--user", "asha@example.com"]) == 0
    token = capsys.readouterr().out.strip()
    caller = TokenVerifier(load_settings()).caller_from_header(f"Bearer {token}")
    assert caller.user_id == user_id_for("asha@example.com") and caller.is_admin


def test_an_empty_user_is_refused() -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--user", " "])
    assert caught.value.code == 2
