"""The redaction point: registered secrets and secret-shaped values never survive `redact`."""

from __future__ import annotations

import pytest

from livingmeta import redaction
from livingmeta.redaction import MASK, redact, redact_data, register_secret


@pytest.fixture(autouse=True)
def _clean_registry():
    redaction.forget_secrets()
    yield
    redaction.forget_secrets()


def test_registered_secret_is_removed_in_every_encoding():
    register_secret("k3y/with+odd=chars")
    for text in ("key k3y/with+odd=chars here", "url ?x=k3y%2Fwith%2Bodd%3Dchars&y=1",
                 "plus k3y%2Fwith%2Bodd%3Dchars", '{"u": "k3y\\/with+odd=chars"}'):
        out = redact(text)
        assert "k3y" not in out, out
        assert MASK in out


def test_secret_shaped_values_are_removed_without_registration():
    cases = {
        "GET /eutils/esearch.fcgi?db=pubmed&api_key=abcdef123456&term=x": "abcdef123456",
        '{"error": "bad key", "api_key": "zzz999zzz"}': "zzz999zzz",
        "Authorization: Bearer eyJhbGciOi.payload.sig": "eyJhbGciOi.payload.sig",
        "https://user:hunter22@example.org/hook": "hunter22",
        "https://hooks.slack.com/services/T000/B000/XXXXYYYY": "XXXXYYYY",
        "token=tok_live_42abc": "tok_live_42abc",
    }
    for text, secret in cases.items():
        assert secret not in redact(text), text


def test_ordinary_text_is_left_alone():
    text = "pageToken=NF0g5JGBlPY nextPageToken 0.95 CI; p = 0.023; NCT01234567 PMID 12345678"
    assert redact(text) == text
    assert redact(None) is None and redact(3) == 3


def test_short_values_are_not_registered():
    register_secret("ab")
    assert redact("ab cab") == "ab cab"


def test_redact_data_walks_nested_values():
    register_secret("s3cr3t-value")
    data = {"error": "echo s3cr3t-value", "list": ["a", ("s3cr3t-value", 1)], "s3cr3t-value": None}
    out = redact_data(data)
    assert "s3cr3t-value" not in repr(out)
    assert out["list"][1][1] == 1
