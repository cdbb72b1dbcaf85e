"""review.toml validation: the template and the example validate; bad files get one clear message."""

from __future__ import annotations

import pytest

from livingmeta.config import TEMPLATE, ConfigError, load_review, parse_review
from tests.conftest import REPO_ROOT


def test_template_validates():
    cfg = parse_review(TEMPLATE)
    assert cfg.id == "my-review"
    assert cfg.analyses[0].method == "MH"


def test_example_review_validates():
    cfg = load_review(REPO_ROOT / "reviews" / "ivig-pnp")
    assert cfg.id == "ivig-pnp"
    assert {a.id for a in cfg.analyses} >= {"responders-or-mh", "responders-rr-re", "relief-share-pft"}


def _bad(replace_from: str, replace_to: str) -> str:
    assert replace_from in TEMPLATE, replace_from
    return TEMPLATE.replace(replace_from, replace_to, 1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (_bad('method = "MH"', 'method = "MAGIC"'), r"analyses\[0\]\.method: unknown method 'MAGIC'; allowed: FE, MH"),
        (_bad('measure = "OR"', 'measure = "SMD"'), r"measure SMD does not fit a binary outcome; allowed: OR, RR, RD, PETO"),
        (_bad('outcome = "responders"', 'outcome = "pain"'), r"outcome 'pain' is not defined; defined outcomes: responders"),
        (_bad('cron = "0 2 * * *"', 'cron = "every night"'), r"schedule\.cron: cron 'every night' must have 5 fields"),
        (_bad('timezone = "UTC"', 'timezone = "Mars/Olympus"'), r"schedule\.timezone: unknown time zone 'Mars/Olympus'"),
        (_bad("reviewers = 1", "reviewers = 3"), r"screening\.reviewers"),
        (_bad("overlap_days = 7", "overlap_days = 7\nolverlap = 3"), r"sources\.pubmed\.olverlap: unknown key \(a typo\?\)"),
        (_bad('id = "my-review"', 'id = "My Review"'), r"^review.toml: id: String should match pattern"),
        (_bad('type = "file"\npath = "alerts.log"', 'type = "webhook"'), r"a 'webhook' channel needs `url_env`"),
        (_bad('type = "file"\npath = "alerts.log"', 'type = "block"\nblock = "team-alerts"'),
         r"block 'team-alerts' must be \"<block type slug>/<block name>\""),
        ('id = "x"\n', r"review.toml: title: required key is missing"),
        ('id = "x"\ntitle = "t"\n', r"no sources: add \[sources.pubmed\]"),
        ("id = \n", r"review.toml: not valid TOML: .*line 1"),
        (_bad("earliest_date = 2000-01-01", 'earliest_date = "01/01/2000"'),
         r"sources\.pubmed\.earliest_date: .*write dates as YYYY-MM-DD without quotes"),
        (_bad("earliest_date = 2000-01-01", "earliest_date = 2000-13-01"),
         r"line 13.*The line reads: 'earliest_date = 2000-13-01 +# first run[^']*'\. Dates are written YYYY-MM-DD \(a real date, month 01-12\)"),
    ],
)
def test_bad_files_get_one_message_naming_the_key(text, expected):
    with pytest.raises(ConfigError, match=expected):
        parse_review(text, "review.toml")


def test_missing_file_says_how_to_create_one(tmp_path):
    with pytest.raises(ConfigError, match="livingmeta init"):
        load_review(tmp_path)
