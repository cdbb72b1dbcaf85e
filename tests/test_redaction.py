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


def test_a_webhook_url_is_redacted_whole_and_by_its_credential_parts():
    url = "https://hooks.example.org/services/T0AB12/B9CD34/XyZsecret987?token=qq11ww22&ok=1"
    register_secret(url)
    for echoed in (url, "/services/T0AB12/B9CD34/XyZsecret987", "XyZsecret987", "qq11ww22",
                   "services%2FT0AB12%2FB9CD34%2FXyZsecret987"):
        out = redact(f"POST failed for {echoed} (500)")
        assert "XyZsecret987" not in out and "qq11ww22" not in out, out
    # the ordinary words of the URL stay readable
    assert redact("services webhook example") == "services webhook example"


def test_xml_escaped_secret_is_removed():
    register_secret("a&b<c>d-key")
    assert "a&amp;b&lt;c&gt;d-key" not in redact("<ERROR>a&amp;b&lt;c&gt;d-key</ERROR>")


def test_redacted_error_redacts_its_message_when_made():
    register_secret("KEY0123456789")

    class SourceError(redaction.RedactedError, RuntimeError):
        pass

    e = SourceError("NCBI said: bad request ?db=pubmed&api_key=KEY0123456789")
    assert "KEY0123456789" not in str(e) and "KEY0123456789" not in repr(e)
    assert isinstance(e, RuntimeError)
    plain = ValueError("echo KEY0123456789")
    assert redaction.safe_message(plain) == f"ValueError: echo {MASK}"


def test_log_records_are_redacted_message_args_and_traceback():
    import io
    import logging

    register_secret("LOGSECRET42xyz")
    redaction.install_log_redaction()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log = logging.getLogger("livingmeta.test.redaction")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("key in message LOGSECRET42xyz")
        log.warning("key in args %s and %r", "LOGSECRET42xyz", {"api_key": "LOGSECRET42xyz"})
        try:
            raise RuntimeError("failed for https://x.org/?api_key=LOGSECRET42xyz")
        except RuntimeError:
            log.exception("request failed")
    finally:
        log.removeHandler(handler)
    text = stream.getvalue()
    assert "LOGSECRET42xyz" not in text, text
    assert text.count(MASK) >= 4 and "Traceback" in text and "request failed" in text
    # a record made before the factory existed is still redacted by the filter on a handler
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "echo %s", ("LOGSECRET42xyz",), None)
    record._livingmeta_redacted = False
    assert redaction.RedactingFilter().filter(record) and "LOGSECRET42xyz" not in record.getMessage()
