"""The review.toml model and its validation.

A review is a folder holding `review.toml`. `load_review(path)` reads and validates it and either
returns a `ReviewConfig` or raises `ConfigError` with one message that names the file, the key and
what is allowed — never a bare traceback.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from livingmeta.diff import CI_WIDTH_CHANGE, RELATIVE_CHANGE

MEASURES_BY_KIND = {
    "binary": ("OR", "RR", "RD", "PETO"),
    "proportion": ("PR", "PLO", "PAS", "PFT"),
    "continuous": ("MD", "SMD", "ROM"),
    "generic": ("GEN",),
}
METHODS = ("FE", "MH", "PETO", "DL", "REML", "ML", "PM", "SJ", "HE", "EB")


class ConfigError(ValueError):
    """A review.toml that cannot be used; the message says where and how to fix it."""


class _Model(BaseModel):
    # unknown keys are almost always typos: refuse them so a setting is never silently ignored
    model_config = ConfigDict(extra="forbid")


class Question(_Model):
    population: str = ""
    intervention: str = ""
    comparator: str = ""
    outcomes: list[str] = Field(default_factory=list)


class PubMedSource(_Model):
    enabled: bool = True
    query: str
    earliest_date: dt.date = dt.date(1900, 1, 1)
    overlap_days: int = Field(default=7, ge=0, le=365)
    batch_size: int = Field(default=250, ge=200, le=500)
    replay: str | None = None  # folder of recorded responses (relative to the review folder)

    @field_validator("query")
    @classmethod
    def _query_not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError(
                'the PubMed query is empty; write the search strategy, e.g. "immunoglobulin AND neuralgia"'
            )
        return v


class CtgovSource(_Model):
    enabled: bool = True
    condition: str = ""
    intervention: str = ""
    terms: str = ""
    earliest_date: dt.date = dt.date(1900, 1, 1)
    overlap_days: int = Field(default=7, ge=0, le=365)
    page_size: int = Field(default=1000, ge=1, le=1000)
    replay: str | None = None

    @model_validator(mode="after")
    def _something_to_search(self) -> CtgovSource:
        if not (self.condition.strip() or self.intervention.strip() or self.terms.strip()):
            raise ValueError("give at least one of condition, intervention or terms")
        return self


class Sources(_Model):
    pubmed: PubMedSource | None = None
    ctgov: CtgovSource | None = None


class ScreeningModel(_Model):
    name: str = "tfidf-svm"
    seed: int = 0
    params: dict[str, Any] = Field(default_factory=dict)


class Screening(_Model):
    reviewers: Literal[1, 2] = 1
    stages: list[Literal["title_abstract", "full_text"]] = Field(
        default_factory=lambda: ["title_abstract", "full_text"]
    )
    include_publication_types: list[str] = Field(default_factory=lambda: ["Randomized Controlled Trial"])
    exclude_publication_types: list[str] = Field(default_factory=list)
    include_keywords: list[str] = Field(default_factory=list)
    exclude_keywords: list[str] = Field(default_factory=list)
    include_mesh: list[str] = Field(default_factory=list)
    exclude_mesh: list[str] = Field(default_factory=list)
    out_of_scope_animal: bool = True
    min_decisions_to_train: int = Field(default=10, ge=2)
    model: ScreeningModel = Field(default_factory=ScreeningModel)
    # the reasons screeners pick from when they exclude (one key each in the web app: 1..9)
    exclusion_reasons: list[str] = Field(default_factory=list, max_length=9)


GRADE_LEVELS = ("high", "moderate", "low", "very low")
_DOWNGRADE = {"not serious": 0, "serious": 1, "very serious": 2}
_PUBLICATION_BIAS = {"undetected": 0, "strongly suspected": 1, "very strongly suspected": 2}
GRADE_DOMAINS = ("risk_of_bias", "inconsistency", "indirectness", "imprecision", "publication_bias")


class Certainty(_Model):
    """The team's GRADE judgments for one outcome (Schünemann HJ et al., GRADE handbook 2013; Cochrane Handbook
    ch. 14): the five domains, upgrades, the resulting level and footnotes explaining each downgrade."""

    study_design: Literal["randomised", "observational"] = "randomised"  # randomised starts high, observational low
    risk_of_bias: Literal["not serious", "serious", "very serious"] = "not serious"
    inconsistency: Literal["not serious", "serious", "very serious"] = "not serious"
    indirectness: Literal["not serious", "serious", "very serious"] = "not serious"
    imprecision: Literal["not serious", "serious", "very serious"] = "not serious"
    publication_bias: Literal["undetected", "strongly suspected", "very strongly suspected"] = "undetected"
    upgrade: int = Field(default=0, ge=0, le=2)  # large effect, dose-response, opposing plausible confounding
    level: Literal["high", "moderate", "low", "very low"]
    footnotes: dict[str, str] = Field(default_factory=dict)  # domain -> why it was (or was not) downgraded

    def computed_level(self) -> str:
        """The level the domain judgments give: start (high/low), minus downgrades, plus upgrades."""
        start = 0 if self.study_design == "randomised" else 2
        down = sum(_DOWNGRADE[getattr(self, d)] for d in GRADE_DOMAINS[:4]) + _PUBLICATION_BIAS[self.publication_bias]
        return GRADE_LEVELS[max(0, min(3, start + down - self.upgrade))]

    @model_validator(mode="after")
    def _level_follows(self) -> Certainty:
        unknown = sorted(set(self.footnotes) - set(GRADE_DOMAINS) - {"upgrade", "level"})
        if unknown:
            raise ValueError(
                f"footnotes: unknown domain {', '.join(map(repr, unknown))}; footnotes are keyed by "
                f"{', '.join(GRADE_DOMAINS)}, upgrade or level"
            )
        downgraded = [d for d in GRADE_DOMAINS if getattr(self, d) not in ("not serious", "undetected")]
        missing = [
            d for d in downgraded + (["upgrade"] if self.upgrade else []) if not self.footnotes.get(d, "").strip()
        ]
        if missing:
            wanted = ", ".join(d + ' = "..."' for d in missing)
            raise ValueError(
                f"footnotes: explain each downgrade or upgrade (GRADE asks for it): add {wanted} "
                "under [outcomes.certainty.footnotes]"
            )
        if self.level != self.computed_level():
            raise ValueError(
                f"level {self.level!r} does not follow from the judgments ({self.study_design} design, "
                f"{len(downgraded)} domain(s) downgraded, upgrade {self.upgrade}): they give "
                f"{self.computed_level()!r}; fix level or the domain judgments"
            )
        return self


class Outcome(_Model):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    label: str
    kind: Literal["binary", "proportion", "continuous", "generic"]
    description: str = ""
    # how forest plots and the summary of findings name the arms and read the direction of an effect
    treatment_label: str = Field(default="treatment", min_length=1, max_length=40)
    control_label: str = Field(default="control", min_length=1, max_length=40)
    higher_is_better: bool = False  # True when the event/score is desirable (responders, quality of life)
    # summary of findings: control risk per participant the corresponding risks are computed for; None: the
    # pooled control arms of the included studies (binary outcomes)
    assumed_control_risk: float | None = Field(default=None, gt=0, lt=1)
    certainty: Certainty | None = None


class TsaSettings(_Model):
    enabled: bool = True
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    beta: float = Field(default=0.20, gt=0, lt=0.5)
    anticipated_effect: float | None = None  # relative risk reduction (binary) or mean difference
    # binary outcomes: does the intervention reduce the event (harm avoided) or increase it (e.g. responders)?
    effect_direction: Literal["reduction", "increase"] = "reduction"
    control_event_rate: float | None = Field(default=None, gt=0, lt=1)
    sd: float | None = Field(default=None, gt=0)
    heterogeneity_correction: Literal["diversity", "none"] = "diversity"
    effect_source: str = ""  # where the anticipated effect comes from (a trial, the minimal important difference)


class Analysis(_Model):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    outcome: str
    label: str = ""
    measure: str
    method: str = "REML"
    test: Literal["z", "knha"] = "z"
    level: float = Field(default=0.95, gt=0.5, lt=1)
    role: Literal["primary", "sensitivity", "secondary"] = "primary"
    arm: Literal["treatment", "control"] = "treatment"  # which arm a single-arm analysis uses
    subgroups: list[str] = Field(default_factory=list)
    tsa: TsaSettings | None = None

    @field_validator("measure")
    @classmethod
    def _measure_known(cls, v: str) -> str:
        allowed = sorted({m for ms in MEASURES_BY_KIND.values() for m in ms})
        if v.upper() not in allowed:
            raise ValueError(f"unknown measure {v!r}; allowed: {', '.join(allowed)}")
        return v.upper()

    @field_validator("method")
    @classmethod
    def _method_known(cls, v: str) -> str:
        if v.upper() not in METHODS:
            raise ValueError(f"unknown method {v!r}; allowed: {', '.join(METHODS)}")
        return v.upper()


class AlertRules(_Model):
    relative_change: float = Field(default=RELATIVE_CHANGE, ge=0)  # |new/old - 1| on the back-transformed scale
    ci_width_change: float = Field(default=CI_WIDTH_CHANGE, ge=0)  # relative change of the CI width
    on_new_candidates: bool = True
    on_significance_change: bool = True
    on_direction_change: bool = True
    on_registry_events: bool = True
    on_tsa_boundary: bool = True


class AlertChannel(_Model):
    type: Literal["file", "block", "webhook"]
    path: str | None = (
        None  # file channel: where to append alerts (relative to the review's output folder <out>/<review id>/)
    )
    block: str | None = None  # Prefect notification block "type-slug/name", e.g. "slack-webhook/team-alerts"
    url_env: str | None = None  # webhook channel: environment variable holding the URL (never the URL itself)

    @model_validator(mode="after")
    def _target_given(self) -> AlertChannel:
        need = {"file": "path", "block": "block", "webhook": "url_env"}[self.type]
        if not getattr(self, need):
            raise ValueError(f"a {self.type!r} channel needs `{need}`")
        if self.type == "block" and "/" not in self.block.strip("/"):
            raise ValueError(
                f'block {self.block!r} must be "<block type slug>/<block name>" as `prefect block ls` '
                'shows it, e.g. "slack-webhook/team-alerts"'
            )
        return self


class Alerts(_Model):
    rules: AlertRules = Field(default_factory=AlertRules)
    channels: list[AlertChannel] = Field(default_factory=list)


DEFAULT_CRON = "0 2 * * *"
MIN_INTERVAL_SECONDS = 60


class Schedule(_Model):
    """When the review updates: a `cron` (default daily at 02:00) or an `interval` in seconds from `anchor_date`.

    The keys are those of a Prefect schedule (prefect.yaml `schedules:`), so a deployment copies them as they are.
    """

    cron: str | None = None
    interval: int | None = None
    anchor_date: dt.datetime | None = None
    timezone: str = "UTC"

    @field_validator("cron")
    @classmethod
    def _cron_fields(cls, v: str | None) -> str | None:
        if v is not None and len(v.split()) != 5:
            raise ValueError(f'cron {v!r} must have 5 fields (minute hour day month weekday), e.g. "0 2 * * *"')
        return v

    @field_validator("interval", mode="before")
    @classmethod
    def _interval_seconds(cls, v: Any) -> Any:
        # a bool is an int to Python and a float would be truncated: refuse both rather than guess
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < MIN_INTERVAL_SECONDS):
            raise ValueError(
                f"interval must be a whole number of seconds, at least {MIN_INTERVAL_SECONDS} "
                "(e.g. 86400 for daily); searches more often than that only load the sources"
            )
        return v

    @model_validator(mode="after")
    def _one_kind(self) -> Schedule:
        if self.cron is not None and self.interval is not None:
            raise ValueError('give either cron or interval, not both (cron = "0 2 * * *" or interval = 86400)')
        if self.anchor_date is not None and self.interval is None:
            raise ValueError(
                "anchor_date only applies to interval = <seconds>; remove it or replace cron by an interval"
            )
        if self.cron is None and self.interval is None:
            self.cron = DEFAULT_CRON
        return self

    @field_validator("timezone")
    @classmethod
    def _tz_known(cls, v: str) -> str:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f'unknown time zone {v!r}; use an IANA name such as "Europe/London"') from None
        return v


class ReviewConfig(_Model):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    title: str
    question: Question = Field(default_factory=Question)
    sources: Sources = Field(default_factory=Sources)
    screening: Screening = Field(default_factory=Screening)
    outcomes: list[Outcome] = Field(default_factory=list)
    analyses: list[Analysis] = Field(default_factory=list)
    alerts: Alerts = Field(default_factory=Alerts)
    schedule: Schedule = Field(default_factory=Schedule)

    @model_validator(mode="after")
    def _cross_checks(self) -> ReviewConfig:
        outcome_ids = [o.id for o in self.outcomes]
        dup = {x for x in outcome_ids if outcome_ids.count(x) > 1}
        if dup:
            raise ValueError(f"outcome id {sorted(dup)[0]!r} is used twice; outcome ids must be unique")
        analysis_ids = [a.id for a in self.analyses]
        dup = {x for x in analysis_ids if analysis_ids.count(x) > 1}
        if dup:
            raise ValueError(f"analysis id {sorted(dup)[0]!r} is used twice; analysis ids must be unique")
        kinds = {o.id: o.kind for o in self.outcomes}
        for i, a in enumerate(self.analyses):
            if a.outcome not in kinds:
                raise ValueError(
                    f"analyses[{i}] ({a.id}): outcome {a.outcome!r} is not defined; "
                    f"defined outcomes: {', '.join(outcome_ids) or 'none — add an [[outcomes]] table'}"
                )
            allowed = MEASURES_BY_KIND[kinds[a.outcome]]
            if a.measure not in allowed:
                raise ValueError(
                    f"analyses[{i}] ({a.id}): measure {a.measure} does not fit a {kinds[a.outcome]} outcome; "
                    f"allowed: {', '.join(allowed)}"
                )
            if a.method == "MH" and a.measure not in ("OR", "RR", "RD"):
                raise ValueError(f"analyses[{i}] ({a.id}): method MH needs measure OR, RR or RD")
            if a.method == "PETO" and a.measure not in ("OR", "PETO"):
                raise ValueError(f"analyses[{i}] ({a.id}): method PETO needs measure OR or PETO")
        if self.sources.pubmed is None and self.sources.ctgov is None:
            raise ValueError("no sources: add [sources.pubmed] and/or [sources.ctgov]")
        return self

    def outcome(self, outcome_id: str) -> Outcome:
        """The outcome with this id (KeyError when unknown)."""
        for o in self.outcomes:
            if o.id == outcome_id:
                return o
        raise KeyError(outcome_id)

    def outcome_kinds(self) -> dict[str, str]:
        """outcome id -> kind (what an extraction CSV is validated against)."""
        return {o.id: o.kind for o in self.outcomes}

    def analysis(self, analysis_id: str) -> Analysis:
        """The analysis with this id (KeyError when unknown)."""
        for a in self.analyses:
            if a.id == analysis_id:
                return a
        raise KeyError(analysis_id)


def _describe_error(err: dict[str, Any]) -> str:
    loc = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in err.get("loc", ()))
    loc = loc.replace(".[", "[")
    msg = err.get("msg", "invalid value")
    msg = msg.removeprefix("Value error, ")
    if err.get("type") == "extra_forbidden":
        msg = "unknown key (a typo?); remove it or check the spelling against `livingmeta init`'s template"
    elif err.get("type") == "missing":
        msg = "required key is missing"
    elif str(err.get("type", "")).startswith(("date", "datetime")):
        msg += "; write dates as YYYY-MM-DD without quotes, e.g. earliest_date = 2000-01-01"
    inp = err.get("input")
    shown = "" if err.get("type") in ("missing", "extra_forbidden") or isinstance(inp, dict) else f" (got {inp!r})"
    return f"{loc or '(top level)'}: {msg}{shown}"


def _toml_hint(text: str, message: str) -> str:
    """The offending line, and a hint for the usual mistake (a date that is not a real YYYY-MM-DD date)."""
    import re

    m = re.search(r"line (\d+)", message)
    if not m:
        return ""
    lines = text.splitlines()
    n = int(m.group(1))
    if not 1 <= n <= len(lines):
        return ""
    line = lines[n - 1].strip()
    hint = f" The line reads: {line!r}."
    if re.search(r"=\s*\d{4}-\d{1,2}-\d{1,2}", line):
        hint += " Dates are written YYYY-MM-DD (a real date, month 01-12), without quotes, e.g. 2000-01-01."
    return hint


def parse_review(text: str, source: str = "review.toml") -> ReviewConfig:
    """Validate review.toml text.

    Args:
        text: the TOML text.
        source: the file name used in messages.
    Returns:
        the validated ReviewConfig.
    Raises:
        ConfigError: naming the file, the key and what is allowed.
    """
    text = text.removeprefix("\ufeff")  # a UTF-8 byte order mark (Windows editors) is not part of the TOML
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(
            f"{source}: not valid TOML: {e}.{_toml_hint(text, str(e))} Fix the syntax at that line."
        ) from None
    try:
        return ReviewConfig.model_validate(data)
    except ValidationError as e:
        errors = e.errors()
        first = _describe_error(errors[0])
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise ConfigError(f"{source}: {first}{more}") from None


def review_file(path: str | Path) -> Path:
    """The review.toml for a review folder or file path."""
    p = Path(path)
    return p / "review.toml" if p.is_dir() else p


def load_review(path: str | Path) -> ReviewConfig:
    """Read and validate a review folder's review.toml (or the file itself).

    The file is read by `livingmeta.userfiles.read_user_text`: larger than MAX_CONFIG_BYTES is refused before
    it is read, a UTF-8 BOM is accepted, other encodings, binary and empty files are named as such.

    Args:
        path: a review folder or its review.toml.
    Returns:
        the validated ReviewConfig.
    Raises:
        ConfigError: when the file is missing, unreadable, not UTF-8 text, too large or invalid.
    """
    from livingmeta.userfiles import MAX_CONFIG_BYTES, UserFileError, read_user_text

    f = review_file(path)
    if not f.exists():
        raise ConfigError(
            f"{f}: no such file. A review is a folder with review.toml; create one with `livingmeta init PATH`."
        )
    try:
        text = read_user_text(
            f,
            what="review.toml",
            max_bytes=MAX_CONFIG_BYTES,
            empty_hint="write the review's settings in it; `livingmeta init PATH` writes a template",
        )
    except UserFileError as e:
        raise ConfigError(str(e)) from None
    return parse_review(text, str(f))


TEMPLATE = """# review.toml — one living systematic review.  Validate with `livingmeta status PATH`.
id = "my-review"                      # lower-case letters, digits, - and _
title = "Drug X for condition Y"

[question]                            # PICO: shown in reports
population = "adults with condition Y"
intervention = "drug X"
comparator = "placebo"
outcomes = ["responders (>=50% improvement)"]

[sources.pubmed]
query = '("drug X"[tiab] OR "drug-X"[tiab]) AND ("condition Y"[tiab] OR "condition Y"[mh])'
earliest_date = 2000-01-01            # first run searches from here; later runs from the last watermark
overlap_days = 7                      # re-search this many days before the watermark (late indexing)
# replay = "snapshots/pubmed"         # read recorded responses instead of calling NCBI

[sources.ctgov]
condition = "condition Y"
intervention = "drug X"
earliest_date = 2000-01-01

[screening]
reviewers = 1                         # 2: every record screened twice; conflicts listed; kappa reported
include_publication_types = ["Randomized Controlled Trial"]
exclude_keywords = []
out_of_scope_animal = true            # label animal-only records out of scope (never deleted)
min_decisions_to_train = 10           # before this many decisions, rules alone rank the queue
exclusion_reasons = ["wrong population", "wrong intervention", "wrong comparator", "not a trial"]  # one key each when screening on the web (at most 9)

[screening.model]
name = "tfidf-svm"
seed = 0

[[outcomes]]
id = "responders"
label = "Responders (>=50% improvement)"
kind = "binary"                       # binary | proportion | continuous | generic
treatment_label = "drug X"            # forest plots: arm columns and "Favours drug X / Favours placebo"
control_label = "placebo"
higher_is_better = true               # responding is good: a ratio above 1 favours drug X
# assumed_control_risk = 0.25         # summary of findings: risk without drug X (default: pooled control arms)

# [outcomes.certainty]                # GRADE judgments shown in the summary of findings (level must follow)
# risk_of_bias = "serious"            # not serious | serious | very serious (also inconsistency,
# imprecision = "not serious"         #   indirectness, imprecision); publication_bias: undetected |
# level = "moderate"                  #   strongly suspected | very strongly suspected
# [outcomes.certainty.footnotes]      # one per downgraded domain
# risk_of_bias = "two of five trials did not conceal allocation"

[[analyses]]
id = "responders-or"
outcome = "responders"
measure = "OR"                        # OR RR RD PETO | PR PLO PAS PFT | MD SMD ROM | GEN
method = "MH"                         # FE MH PETO DL REML ML PM SJ HE EB
test = "z"                            # z | knha (Knapp-Hartung)
role = "primary"

[analyses.tsa]                        # trial sequential analysis (binary: control_event_rate; continuous: sd)
control_event_rate = 0.25
anticipated_effect = 0.3              # relative change (binary) or mean difference (continuous)
effect_direction = "increase"         # reduction | increase
effect_source = "minimal important difference agreed by the team"

[alerts.rules]
relative_change = 0.10                # alert when an estimate moves by more than 10%

[[alerts.channels]]
type = "file"
path = "alerts.log"                   # relative to the output folder: <out>/<review id>/alerts.log

[schedule]
cron = "0 2 * * *"                    # or: interval = 86400 (seconds) and anchor_date = 2025-01-06T02:00:00
timezone = "UTC"
"""
