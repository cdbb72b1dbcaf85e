"""Grouping a review's records into studies: one trial with all its reports.

A study is one trial: its registry entry, primary and secondary publications, conference abstracts. Records
are tied together, strongest evidence first, by a shared trial registration (NCT, ISRCTN, EudraCT), a registry
entry's own list of result publications (PMIDs), a shared DOI, and finally by near-identical titles
(rapidfuzz token-sort ratio) of the same first author and year. Each link keeps its method, score and the
evidence that tied it.

Study ids are assigned once and never change ("<FirstAuthorSurname><Year>" for publications, suffixed a, b, …
on clashes; the NCT id for registry-only studies; a publication joining a registry-only study keeps that id).
People's decisions win over automatic linking on every later run: a record a person linked stays in its
study, a record a person split off never rejoins the study it was split from.

Guards that keep two trials apart: two registry entries never share a study automatically (a publication
naming two NCT ids joins the first and the other is reported as a conflict), and a registry entry's list of
publications is ignored for a publication that names other trial registrations only.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from rapidfuzz import fuzz, process

# the order in which evidence is trusted; an earlier method wins when two could tie the same records
METHOD_RANK = {"nct": 0, "registry": 1, "pmid": 2, "doi": 3, "fuzzy": 4}
FUZZY_THRESHOLD = 92.0  # publication vs publication, same first author, years at most 1 apart
REGISTRY_TITLE_THRESHOLD = 95.0  # publication vs registry title, when the publication names no trial id
MIN_TITLE_CHARS = 25  # shorter titles ("Erratum", "Letter") say too little to link on
CDIST_CELLS = 4_000_000  # scores one title comparison holds at a time (16 MB of float32)


@dataclass(frozen=True)
class LinkRecord:
    """What linking needs to know about one record.

    Attributes:
        record_id: "pubmed:<pmid>" / "ctgov:<NCT>".
        source: "pubmed" | "ctgov".
        title, authors ("Family Initials"), year, doi: bibliographic facts.
        registry_ids: trial ids the record carries (NCT…, ISRCTN…, "EudraCT …").
        references: for a registry entry, PMIDs it lists as result/derived publications.
        alt_titles: further titles (a registry entry's brief title).
    """

    record_id: str
    source: str
    title: str = ""
    authors: tuple[str, ...] = ()
    year: int | None = None
    doi: str | None = None
    registry_ids: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    alt_titles: tuple[str, ...] = ()
    label_hint: str | None = None  # registry acronym or brief title, for the study label


@dataclass(frozen=True)
class LinkDecision:
    """A person's decision: `link` (record belongs to study_id) or `unlink` (record leaves study_id)."""

    record_id: str
    action: str
    study_id: str | None


@dataclass
class Link:
    record_id: str
    study_id: str
    method: str  # nct | registry | pmid | doi | fuzzy | manual | singleton
    score: float | None
    evidence: str


@dataclass
class Conflict:
    record_id: str
    other_record_id: str
    method: str
    reason: str


@dataclass
class Linking:
    """The result of linking: every record's study, studies created, studies merged away, refused links."""

    links: list[Link] = field(default_factory=list)
    new_studies: dict[str, str] = field(default_factory=dict)  # study_id -> label
    merged: list[tuple[str, str, str]] = field(default_factory=list)  # (old study id, into study id, reason)
    split: list[tuple[str, str]] = field(default_factory=list)  # (study that lost records, new study id)
    conflicts: list[Conflict] = field(default_factory=list)

    def study_of(self) -> dict[str, str]:
        return {lk.record_id: lk.study_id for lk in self.links}


@dataclass(frozen=True)
class _Edge:
    a: str
    b: str
    method: str
    score: float
    evidence: str


_EMPTY: frozenset = frozenset()


class _Component:
    """The records linked so far into one study, with what decides whether another may join. The facts are
    frozensets, the empty ones all one shared object: a first load makes one component per record (six empty
    sets each took 1.3 kB, 260 MB at 200k records; issue 15); merging replaces them with their union."""

    __slots__ = ("members", "registry", "ncts", "priors", "pinned", "forbidden", "marks")

    def __init__(self, rec: LinkRecord, prior: str | None, pinned: str | None, forbidden: str | None):
        self.members = [rec.record_id]
        # what the publications' titles say tells this trial from its siblings (numbers, phases, doses, labels)
        sig = _discriminator_signature(rec.title) if rec.source != "ctgov" else frozenset()
        self.marks = frozenset((sig,)) if sig else _EMPTY
        self.registry = frozenset((rec.record_id,)) if rec.source == "ctgov" else _EMPTY
        self.ncts = frozenset(r for r in rec.registry_ids if r.startswith("NCT")) or _EMPTY
        self.priors = frozenset((prior,)) if prior else _EMPTY
        self.pinned = frozenset((pinned,)) if pinned else _EMPTY
        self.forbidden = frozenset((forbidden,)) if forbidden else _EMPTY


def normalise_title(title: str) -> str:
    """A title reduced for comparison: ASCII, lower case, no markup or punctuation, single spaces."""
    t = re.sub(r"<[^>]+>", " ", title or "")
    t = unicodedata.normalize("NFKD", t).encode("ascii", "ignore").decode()
    t = re.sub(r"[^a-z0-9]+", " ", t.lower())
    return " ".join(t.split())


def _sorted_tokens(title: str) -> str:
    # spelling variants already made equal (title_words), so a fibre/fiber title scores as the same title
    return " ".join(sorted(title_words(title)))


# ------------------------------------------------------------------------------------------------------------------
# Titles that name different trials. Near-identical titles of the same authors are often sibling trials or other
# parts of one programme: "… trial 1" / "… trial 2", part I / part II, phase 2 / phase 3, 10 mg / 20 mg, children /
# adults, the open-label extension, SURPASS-1 / SURPASS-2. A fuzzy score cannot see that one word (or digit) decides
# it, so before any fuzzy merge the two titles are compared word by word (`title_difference`): they may differ
# only in spelling (British/American, Greek letters, case, punctuation, markup, "vs"/"versus", "two"/"2",
# "II"/"2"), in words that describe the design or the kind of report (`REPORT_WORDS`: "a randomised controlled
# trial", "erratum", "abstract"), and in a follow-up span ("2-year follow-up", "52-week results") that only ONE of
# them carries (a later report of the same trial; tests/test_linking_studies.py links one). Anything else — a
# number, roman numeral, phase, dose, year, lettered arm or cohort, an extension, pilot, long-term or follow-up
# study, or any other word added or swapped — keeps them apart unless an identifier (registry id, DOI, a
# registry's list of its publications) ties them. Linking would rather leave two reports of one trial apart
# (a person links them with `livingmeta studies link`; the refused pair is listed as a conflict) than merge two
# trials, which silently drops one of them from screening and the analyses.

_GREEK = {
    "α": "alpha",
    "β": "beta",
    "γ": "gamma",
    "δ": "delta",
    "ε": "epsilon",
    "κ": "kappa",
    "λ": "lambda",
    "μ": "mu",
    "µ": "mu",
    "τ": "tau",
    "ω": "omega",
    "θ": "theta",
    "σ": "sigma",
}
_NUMBER_WORDS = {
    w: str(i)
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen twenty".split()
    )
}
_NUMBER_WORDS.update({"thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "hundred": "100"})
_ORDINALS = {
    w: str(i)
    for i, w in enumerate("zeroth first second third fourth fifth sixth seventh eighth ninth tenth".split())
    if i
}
_ROMAN = {
    "i": 1,
    "ii": 2,
    "iii": 3,
    "iv": 4,
    "v": 5,
    "vi": 6,
    "vii": 7,
    "viii": 8,
    "ix": 9,
    "x": 10,
    "xi": 11,
    "xii": 12,
}
# words after which a numeral, roman numeral or single letter names a trial, part, arm or cohort
_LABEL_WORDS = {
    "part",
    "phase",
    "study",
    "trial",
    "stage",
    "type",
    "grade",
    "cohort",
    "arm",
    "group",
    "class",
    "period",
    "series",
    "wave",
    "experiment",
    "protocol",
    "step",
    "substudy",
    "panel",
    "module",
}
_DURATION_UNITS = {
    "year",
    "month",
    "week",
    "day",
    "days",
    "hour",
    "minute",
    "yr",
    "yrs",
    "hrs",
    "wks",
    "mo",
    "mos",
    "wk",
    "h",
    "d",
}
# see REPORT_WORDS (spelt through _spell below)
_REPORT_TEXT = """
a an the of in on at by for from to with and or its their as is are was were be this that
results result report reports reported trial study randomized controlled clinical multicenter
double blind blinded masked placebo pragmatic noninferiority non inferiority superiority equivalence head parallel
group prospective open label crossover cross over sham assessor abstract poster presentation erratum correction
corrected corrigendum retraction retracted notice comment commentary reply response letter protocol design
rationale baseline characteristic analysis analyses outcome findings final interim update updated preliminary
dose ranging finding escalation
efficacy effect effectiveness safety evaluation versus compared comparison comparing investigation
"""
# design words that cannot describe one trial together (each pair: one side's words vs the other's)
_CONTRASTING_DESIGNS = (
    ({"open"}, {"blind", "blinded", "masked", "placebo", "sham"}),
    ({"crossover", "cross"}, {"parallel"}),
    ({"noninferiority", "inferiority", "equivalence"}, {"superiority"}),
)
# a later report of the same trial names its follow-up; two different follow-ups are two reports to keep apart
_FOLLOW_UP_WORDS = {"follow", "up", "followup", "long", "term", "longterm"}
# spelling: applied to both titles, so over-reaching only makes two spellings of one word equal
_SPELLING = [
    (re.compile(p), r)
    for p, r in [
        (r"^oe", "e"),
        (r"ae", "e"),
        (r"oe", "e"),
        (r"isation", "ization"),
        (r"is(e|ed|es|ing)$", r"iz\1"),
        (r"ys(e|ed|es|ing)$", r"yz\1"),
        (r"(?<!h)our(?=(s|al|ally|ed|ing|able|ite|ites)?$)", "or"),
        (r"(?<=..[^aeiou])re$", "er"),
        (r"ll(ed|ing)$", r"l\1"),
        (r"ogue$", "og"),
        (r"amme$", "am"),
        (r"eing$", "ing"),
    ]
]


@functools.lru_cache(maxsize=262144)  # a review's vocabulary is small beside its word count
def _spell(word: str) -> str:
    for pattern, repl in _SPELLING:
        word = pattern.sub(repl, word)
    if len(word) > 4 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]  # plural: "doses"/"dose", "outcomes"/"outcome"
    return word


# the kind of report or design: wording that varies between reports of one trial (spelt as title_words spells)
REPORT_WORDS = frozenset(_spell(w) for w in _REPORT_TEXT.split())


def title_words(title: str) -> list[str]:
    """A title as comparable words: markup, case, accents, Greek letters, punctuation and spelling variants gone;
    number words and roman numerals that label a part, phase or trial as digits; "vs" as "versus".

    Args:
        title: the title as published.
    Returns:
        the words in order: "Phase IIb trial of β-blockers" -> ["phase", "2b", "trial", "of", "beta", "blocker"].
    """
    return list(_title_words(title or ""))


@functools.lru_cache(maxsize=65536)
def _title_words(title: str) -> tuple[str, ...]:
    t = re.sub(r"<[^>]+>", " ", title or "")
    for g, name in _GREEK.items():
        t = t.replace(g, f" {name} ")
    t = unicodedata.normalize("NFKD", t).encode("ascii", "ignore").decode().lower()
    # 10mg -> 10 mg; a lone a/b after digits stays on them (phase 2b, beta-1a)
    t = re.sub(r"(\d)(?![ab](?![a-z]))([a-z])", r"\1 \2", t)
    t = re.sub(r"(\d)[.,](\d)", r"\1p\2", t)  # 4.5 hours, 0.4 g/kg: a decimal stays one token
    raw = re.sub(r"[^a-z0-9]+", " ", t).split()
    out: list[str] = []
    for k, w in enumerate(raw):
        prev = out[-1] if out else ""
        last = k == len(raw) - 1
        if w in ("vs", "v") and 0 < k < len(raw) - 1 and prev not in _LABEL_WORDS:
            w = "versus"
        elif prev == "phase" and re.fullmatch(r"(i{1,3}|iv|v)([ab]?)", w):
            m = re.fullmatch(r"(i{1,3}|iv|v)([ab]?)", w)
            w = f"{_ROMAN[m.group(1)]}{m.group(2)}"  # phase IIb
        elif w in _ROMAN and (prev in _LABEL_WORDS or (last and w not in ("iv", "x")) or (len(w) > 1 and w != "iv")):
            w = str(_ROMAN[w])  # part II, OPERA II, ASTERIA I at the end; "iv" alone is intravenous
        elif w in _NUMBER_WORDS:
            w = _NUMBER_WORDS[w]
        elif w in _ORDINALS and ((k + 1 < len(raw) and raw[k + 1] in _LABEL_WORDS) or prev == "the"):
            w = _ORDINALS[w]  # the second trial; first-line stays a word
        else:
            w = _spell(w)
        out.append(w)
    return tuple(out)


def _durations(words: list[str]) -> set[int]:
    """Positions of numbers that give a time span ("2-year", "12 weeks", "week 52"), and of their units."""
    pos = set()
    for k, w in enumerate(words[:-1]):
        if re.fullmatch(r"\d+(p\d+)?", w) and words[k + 1] in _DURATION_UNITS:
            pos.update((k, k + 1))
        elif w in _DURATION_UNITS and len(w) > 1 and re.fullmatch(r"\d+(p\d+)?", words[k + 1]) and k + 1 not in pos:
            pos.update((k, k + 1))
    return pos


def discriminating_tokens(title: str) -> frozenset[str]:
    """The words of a title that tell one trial from its siblings: numbers (digits, number words, roman numerals
    of a part/phase/trial), phases ("phase:2b"), doses ("dose:0p4 mg"), lettered parts/arms/cohorts ("label:b"),
    extension/pilot/sub-study/long-term/follow-up words, and follow-up spans ("span:2 year", "span:follow-up"
    for "2-year follow-up") — spans only separate two titles that both carry one (see `title_difference`).

    Args:
        title: the title as published.
    Returns:
        the discriminating tokens (empty for a title that names no number, phase, dose, label or such word).
    """
    return frozenset(_discriminators(title))


@functools.lru_cache(maxsize=65536)
def _discriminators(title: str) -> Counter[str]:
    # counted: "type 2 diabetes (SURPASS-2)" names 2 twice, "type 2 diabetes (SURPASS)" once
    words = title_words(title)
    spans = _durations(words)
    out: Counter[str] = Counter()
    for k, w in enumerate(words):
        prev = words[k - 1] if k else ""
        nxt = words[k + 1] if k + 1 < len(words) else ""
        if k in spans:
            if re.fullmatch(r"\d+(p\d+)?", w):
                unit = nxt if k + 1 in spans and nxt in _DURATION_UNITS else prev
                out[f"span:{w} {unit}"] += 1
            continue
        if re.fullmatch(r"\d+[ab]?|\d+p\d+", w):
            if prev == "phase":
                out[f"phase:{w}"] += 1
            elif nxt in {"mg", "g", "mcg", "ug", "iu", "unit", "ml", "mmol", "kg", "mg kg", "percent"}:
                out[f"dose:{w} {nxt}"] += 1
            else:
                out[f"n:{w}"] += 1
        elif w in {"extension", "pilot", "feasibility", "substudy", "ancillary", "rollover", "continuation"}:
            out[w] += 1
        elif w in {"high", "low", "standard"} and nxt == "dose":
            out[f"dose:{w}"] += 1
        elif w in {"follow", "followup"} or (w == "long" and nxt == "term") or w == "longterm":
            out["long-term" if w in ("long", "longterm") else "follow-up"] += 1
        elif w == "sub" and nxt == "study":
            out["substudy"] += 1
    if "follow-up" in out and any(t.startswith("span:") for t in out):
        # "2-year follow-up": a later report of the trial, which one title may add (the span tells it apart from
        # another follow-up); a follow-up or long-term study without a span may be a study of its own
        out["span:follow-up"] += out.pop("follow-up")
    # lettered parts, arms and cohorts ("Study B", "cohort A"): a capital letter, so the article "a" after
    # "trial" is none (titles in capitals say nothing here)
    if re.search(r"[a-z]", title or ""):
        words_re = "|".join(sorted(_LABEL_WORDS))
        for m in re.finditer(rf"(?i:\b(?:{words_re})\b)[\s-]+([A-H](?:/[A-H])*)(?![A-Za-z])", title or ""):
            out.update(f"label:{x.lower()}" for x in m.group(1).split("/"))
    return out


def title_difference(a: str, b: str) -> str | None:
    """Why two near-identical titles may name different trials, or None when they may be one.

    They may be one when they differ only in spelling, in REPORT_WORDS, and in a follow-up qualifier only one
    of them carries. Otherwise the first difference is named: discriminating tokens (numbers, phases, doses,
    labels, extension/pilot) or another word that one title adds or swaps.

    Args:
        a, b: the two titles as published.
    Returns:
        a short reason ("titles differ in n:1 / n:2") or None.
    """
    da, db = _discriminators(a), _discriminators(b)  # cached: never changed here
    strict_a = Counter({t: n for t, n in da.items() if not t.startswith("span:")})
    strict_b = Counter({t: n for t, n in db.items() if not t.startswith("span:")})
    if strict_a != strict_b:
        only_a = ", ".join(sorted((strict_a - strict_b).elements())) or "-"
        only_b = ", ".join(sorted((strict_b - strict_a).elements())) or "-"
        return f"titles differ in {only_a} / {only_b}"
    span_a, span_b = set(da) - set(strict_a), set(db) - set(strict_b)
    if span_a and span_b and span_a != span_b:
        return f"titles name other follow-ups ({', '.join(sorted(span_a))} / {', '.join(sorted(span_b))})"
    wa, wb = title_words(a), title_words(b)
    # design words vary between reports of one trial, unless they contradict: an open-label and a blinded trial
    for one, other in _CONTRASTING_DESIGNS:
        if (one & set(wa) and other & set(wb) and not other & set(wa)) or (
            one & set(wb) and other & set(wa) and not other & set(wb)
        ):
            return f"titles describe other designs ({'/'.join(sorted(one))} vs {'/'.join(sorted(other))})"
    skip_a, skip_b = _durations(wa), _durations(wb)
    ca = Counter(w for k, w in enumerate(wa) if k not in skip_a and w not in REPORT_WORDS and w not in _FOLLOW_UP_WORDS)
    cb = Counter(w for k, w in enumerate(wb) if k not in skip_b and w not in REPORT_WORDS and w not in _FOLLOW_UP_WORDS)
    only_a = sorted((ca - cb).elements())
    only_b = sorted((cb - ca).elements())
    # "pre-eclampsia" / "preeclampsia", "beta-blocker" / "betablocker": one word written as two
    for left, right, seq in ((only_a, only_b, wb), (only_b, only_a, wa)):
        for n in (2, 3):
            for i in range(len(seq) - n + 1):
                joined = "".join(seq[i : i + n])
                if joined in left:
                    left.remove(joined)
                    for part in seq[i : i + n]:
                        if part in right:
                            right.remove(part)
    # a misspelt long word is the same word (revised records fix typos); drug names a few letters apart are not
    for x in list(only_a):
        y = next(
            (
                y
                for y in only_b
                if len(x) >= 8 and len(y) >= 8 and not re.search(r"\d", x + y) and fuzz.ratio(x, y) >= 90
            ),
            None,
        )
        if y is not None:
            only_a.remove(x)
            only_b.remove(y)
    if only_a or only_b:
        return f"titles differ in the words {' '.join(only_a) or '-'} / {' '.join(only_b) or '-'}"
    return None


def _content_key(title: str) -> tuple[str, ...]:
    """The sorted content words of a title (REPORT_WORDS and follow-up qualifiers left out)."""
    words = title_words(title)
    skip = _durations(words)
    return tuple(
        sorted(w for k, w in enumerate(words) if k not in skip and w not in REPORT_WORDS and w not in _FOLLOW_UP_WORDS)
    )


def _discriminator_signature(title: str) -> frozenset[tuple[str, int]]:
    return frozenset((t, n) for t, n in _discriminators(title).items() if not t.startswith("span:"))


def author_surname(author: str) -> str:
    """The family name of a "Family Initials" author string ("van der Berg AB" -> "van der Berg")."""
    parts = (author or "").split()
    if len(parts) > 1 and re.fullmatch(r"[A-Z]{1,4}", parts[-1]):
        parts = parts[:-1]
    return " ".join(parts)


def _id_part(text: str) -> str:
    t = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    t = re.sub(r"[^A-Za-z0-9]", "", t)
    return t[:1].upper() + t[1:]


def _suffixes() -> Iterable[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    yield from letters
    for a in letters:
        for b in letters:
            yield a + b


def _with_suffix(base: str, taken: set[str]) -> str:
    if base not in taken:
        return base
    for s in _suffixes():
        if base + s not in taken:
            return base + s
    raise ValueError(f"more than 700 studies named {base}")  # pragma: no cover - not a realistic review


def _candidate_edges(
    records: Sequence[LinkRecord], fuzzy_threshold: float, registry_title_threshold: float
) -> tuple[list[_Edge], list[Conflict]]:
    by_id = {r.record_id: r for r in records}
    edges: list[_Edge] = []
    conflicts: list[Conflict] = []
    # shared registry ids: tie every carrier to one hub (the registry entry when we have it)
    carriers: dict[str, list[str]] = defaultdict(list)
    for r in records:
        for rid in r.registry_ids:
            carriers[rid].append(r.record_id)
    for rid, ids in sorted(carriers.items()):
        if len(ids) < 2:
            continue
        reg = f"ctgov:{rid}" if rid.startswith("NCT") else None
        hub = reg if reg in ids else sorted(ids)[0]
        method = "nct" if rid.startswith("NCT") else "registry"
        for other in sorted(ids):
            if other != hub:
                edges.append(_Edge(hub, other, method, 1.0, f"{rid} carried by {hub} and {other}"))
    # a registry entry's own list of its publications
    for r in records:
        if r.source != "ctgov":
            continue
        nct = r.record_id.split(":", 1)[1]
        for pmid in r.references:
            pub = by_id.get(f"pubmed:{pmid}")
            if pub is None:
                continue
            own = {x for x in pub.registry_ids if x.startswith("NCT")}
            if own and nct not in own:
                conflicts.append(
                    Conflict(
                        pub.record_id,
                        r.record_id,
                        "pmid",
                        f"{r.record_id} lists PMID {pmid} as its publication, but that publication "
                        f"names {', '.join(sorted(own))}; not linked",
                    )
                )
                continue
            edges.append(_Edge(r.record_id, pub.record_id, "pmid", 1.0, f"{r.record_id} lists PMID {pmid}"))
    # shared DOI
    dois: dict[str, list[str]] = defaultdict(list)
    for r in records:
        if r.doi:
            dois[r.doi.lower()].append(r.record_id)
    for doi, ids in sorted(dois.items()):
        ids = sorted(ids)
        for other in ids[1:]:
            edges.append(_Edge(ids[0], other, "doi", 1.0, f"DOI {doi} carried by {ids[0]} and {other}"))
    edges.extend(_fuzzy_edges(records, fuzzy_threshold, registry_title_threshold, conflicts))
    return edges, conflicts


def _fuzzy_edges(
    records: Sequence[LinkRecord], threshold: float, registry_threshold: float, conflicts: list[Conflict] | None = None
) -> list[_Edge]:
    """Title matches: publication vs publication (same first author, years at most 1 apart) and a publication
    without a trial id vs a registry title. A pair whose titles name different trials (`title_difference`) is
    never an edge; it is reported in `conflicts` instead, so a person can still link it by hand."""
    conflicts = conflicts if conflicts is not None else []
    pubs = [r for r in records if r.source != "ctgov" and len(normalise_title(r.title)) >= MIN_TITLE_CHARS]
    regs = [r for r in records if r.source == "ctgov"]
    edges: list[_Edge] = []
    # token-sort ratio = plain ratio of the sorted tokens: sort once here, not inside every comparison
    titles = [_sorted_tokens(r.title) for r in pubs]
    surnames = [author_surname(r.authors[0]).lower() if r.authors else None for r in pubs]
    # Blocking: a title match ties two publications only when they have the same first author and years at most
    # 1 apart (or unknown), so only those pairs are compared: per first author, each year against itself and the
    # next, a publication without a year against all of that author's. Exactly the pairs the rule can accept
    # (comparing every pair of a year, as before, grew with the square of the review's size).
    by_author: dict[str, list[int]] = defaultdict(list)
    for i, sn in enumerate(surnames):
        if sn:
            by_author[sn].append(i)
    candidates: dict[tuple[int, int], float] = {}
    for members in by_author.values():
        if len(members) < 2:
            continue
        by_year: dict[int | None, list[int]] = defaultdict(list)
        for i in members:
            by_year[pubs[i].year].append(i)
        blocks = [
            (by_year[y], by_year[y] + by_year.get(y + 1, [])) for y in sorted(y for y in by_year if y is not None)
        ]
        if by_year.get(None):
            blocks.append((by_year[None], members))
        for left, right in blocks:
            if len(right) < 2:
                continue
            scores = process.cdist(
                [titles[i] for i in left],
                [titles[j] for j in right],
                scorer=fuzz.ratio,
                score_cutoff=threshold,
                workers=1 if len(left) * len(right) < 250_000 else -1,
            )
            for li, rj in zip(*scores.nonzero()):
                i, j = left[int(li)], right[int(rj)]
                if i != j:
                    candidates[(min(i, j), max(i, j))] = float(scores[li, rj])
    # titles equal but for design or report words ("…: a randomised controlled trial", "Erratum: …") score low
    # when the title is short; the same first author and the same content words make them candidates too
    by_content: dict[tuple, list[int]] = defaultdict(list)
    for i, r in enumerate(pubs):
        key = _content_key(r.title)
        if len(key) >= 4 and surnames[i]:
            by_content[(surnames[i], key)].append(i)
    for group in by_content.values():
        for x in range(len(group)):
            for y in range(x + 1, len(group)):
                i, j = sorted((group[x], group[y]))
                if (i, j) not in candidates:
                    candidates[(i, j)] = float(fuzz.ratio(titles[i], titles[j]))
    for (i, j), score in sorted(candidates.items()):
        a, b = pubs[i], pubs[j]
        sa, sb = surnames[i], surnames[j]
        if not (sa and sb and sa == sb):
            continue  # different (or unknown) first authors: similar titles alone do not make one trial
        if a.year is not None and b.year is not None and abs(a.year - b.year) > 1:
            continue
        why = title_difference(a.title, b.title)
        if why:
            conflicts.append(
                Conflict(
                    b.record_id,
                    a.record_id,
                    "fuzzy",
                    f"titles {score:.0f}% alike, same first author, but {why}: not linked; link by "
                    "hand if they are one trial",
                )
            )
            continue
        edges.append(
            _Edge(
                a.record_id,
                b.record_id,
                "fuzzy",
                round(score / 100, 4),
                f"title {score:.0f}% alike, first author {author_surname(a.authors[0])}, years {a.year}/{b.year}",
            )
        )
    lonely = [r for r in pubs if not any(x.startswith("NCT") for x in r.registry_ids)]
    if lonely and regs:
        reg_titles, reg_of = [], []
        for k, r in enumerate(regs):
            for t in (r.title, *r.alt_titles):
                if len(normalise_title(t)) >= MIN_TITLE_CHARS:
                    reg_titles.append((_sorted_tokens(t), t))
                    reg_of.append(k)
        best: dict[tuple[int, int], tuple[float, str]] = {}
        for li, rj, score in _similar_titles(
            [_sorted_tokens(r.title) for r in lonely], [t for t, _ in reg_titles], registry_threshold
        ):
            key = (li, reg_of[rj])
            cand = (score, reg_titles[rj][1])
            if cand[0] > best.get(key, (0.0, ""))[0]:
                best[key] = cand
        for (li, k), (score, reg_title) in sorted(best.items()):
            why = title_difference(lonely[li].title, reg_title)
            if why:
                conflicts.append(
                    Conflict(
                        lonely[li].record_id,
                        regs[k].record_id,
                        "fuzzy",
                        f"title {score:.0f}% alike the registry title of {regs[k].record_id}, "
                        f"but {why}: not linked; link by hand if they are one trial",
                    )
                )
                continue
            edges.append(
                _Edge(
                    regs[k].record_id,
                    lonely[li].record_id,
                    "fuzzy",
                    round(score / 100, 4),
                    f"title {score:.0f}% alike the registry title of {regs[k].record_id}",
                )
            )
    return edges


def _similar_titles(
    left: Sequence[str], right: Sequence[str], cutoff: float, cells: int = CDIST_CELLS
) -> list[tuple[int, int, float]]:
    """Every (i, j, score) with fuzz.ratio(left[i], right[j]) >= cutoff, i.e. what `process.cdist` with that
    cutoff finds, without comparing strings whose lengths alone rule it out: ratio = 100 * (1 - d / (l1 + l2))
    with d >= |l1 - l2| (insertions and deletions), so a pair can reach the cutoff only when
    |l1 - l2| <= (1 - cutoff / 100) * (l1 + l2). The right strings are sorted by length once; each band of
    left lengths is compared with the slice of right strings it can reach (found by bisection), so a few new
    titles against every title of a review cost the comparisons they need, not a pass over the review."""
    if not left or not right or cutoff <= 0:
        return []
    slack = 1.0 - cutoff / 100.0
    right_len = np.fromiter((len(t) for t in right), dtype=np.int64, count=len(right))
    order = np.argsort(right_len, kind="stable")
    sorted_len = right_len[order]
    by_length = [right[int(j)] for j in order]
    left_by_len: dict[int, list[int]] = defaultdict(list)
    for i, t in enumerate(left):
        left_by_len[len(t)].append(i)
    out: list[tuple[int, int, float]] = []
    band = 4  # left strings of lengths [b, b + band) share one comparison against the right strings they can reach
    keys = sorted(left_by_len)
    k = 0
    while k < len(keys):
        lo = keys[k]
        group: list[int] = []
        while k < len(keys) and keys[k] < lo + band:
            group += left_by_len[keys[k]]
            k += 1
        hi = lo + band - 1
        # l2 reachable from some l1 in [lo, hi]: (1 - s) l2 <= (1 + s) l1 and (1 + s) l2 >= (1 - s) l1
        r_lo, r_hi = (1 - slack) * lo / (1 + slack), (1 + slack) * hi / (1 - slack)
        a = int(np.searchsorted(sorted_len, r_lo - 1e-9, side="left"))
        b = int(np.searchsorted(sorted_len, r_hi + 1e-9, side="right"))
        if a >= b:
            continue
        # cdist answers a dense matrix: the largest band of the 200k growth review is 80 million scores (305 MB),
        # so its rows are compared a slice at a time (`cells` scores at most; issue 15)
        targets = by_length[a:b]
        step = max(1, cells // len(targets))
        for g0 in range(0, len(group), step):
            rows = group[g0 : g0 + step]
            scores = process.cdist([left[i] for i in rows], targets, scorer=fuzz.ratio, score_cutoff=cutoff, workers=-1)
            for gi, cj in zip(*scores.nonzero()):
                out.append((rows[int(gi)], int(order[a + int(cj)]), float(scores[gi, cj])))
    out.sort()  # the order cdist over all of them gives
    return out


def _new_study_id(members: Sequence[LinkRecord], taken: set[str]) -> tuple[str, str]:
    pubs = sorted((r for r in members if r.source != "ctgov"), key=lambda r: (r.year is None, r.year or 0, r.record_id))
    regs = sorted(r.record_id for r in members if r.source == "ctgov")
    with_author = [r for r in pubs if r.authors and _id_part(author_surname(r.authors[0]))]
    if with_author:
        first = with_author[0]
        surname = author_surname(first.authors[0])
        base = _id_part(surname) + (str(first.year) if first.year else "")
        label = f"{surname} {first.year or 'n.d.'}"
    elif regs:
        base = regs[0].split(":", 1)[1]
        hint = next((r.label_hint for r in members if r.record_id == regs[0] and r.label_hint), None)
        label = f"{base} ({hint})" if hint else base
    else:
        base = "PMID" + pubs[0].record_id.split(":", 1)[1]
        label = f"{pubs[0].title[:60]} ({pubs[0].year or 'n.d.'})" if pubs[0].title else base
    sid = _with_suffix(base, taken)
    return sid, (label if sid == base else f"{label}{sid[len(base) :]}")


def link_records(
    records: Sequence[LinkRecord],
    *,
    previous: Mapping[str, str] | None = None,
    known_studies: Sequence[str] = (),
    decisions: Sequence[LinkDecision] = (),
    fuzzy_threshold: float = FUZZY_THRESHOLD,
    registry_title_threshold: float = REGISTRY_TITLE_THRESHOLD,
) -> Linking:
    """Group records into studies, keeping study ids stable and people's decisions binding.

    Args:
        records: the review's records.
        previous: record_id -> study_id from the last linking run (the stable ids).
        known_studies: every study id the review has ever used, oldest first (never reused for another study;
            when two existing studies must merge, the older id is kept).
        decisions: people's link/unlink decisions, oldest first; the latest per record counts.
        fuzzy_threshold: minimum rapidfuzz token-sort ratio (0-100) for publication-publication title matches.
        registry_title_threshold: minimum ratio for a publication without a trial id vs a registry title.
    Returns:
        a Linking: one Link per record, new studies with labels, merged and split studies, refused links.
    """
    previous = dict(previous or {})
    by_id = {r.record_id: r for r in sorted(records, key=lambda r: r.record_id)}
    latest: dict[str, LinkDecision] = {}
    for d in decisions:
        if d.action not in ("link", "unlink"):
            raise ValueError(f"unknown link decision {d.action!r} for {d.record_id}; expected link or unlink")
        latest[d.record_id] = d
    pinned = {rid: d.study_id for rid, d in latest.items() if d.action == "link" and d.study_id and rid in by_id}
    forbidden = {rid: d.study_id for rid, d in latest.items() if d.action == "unlink" and d.study_id and rid in by_id}

    comps: dict[str, _Component] = {}
    parent: dict[str, str] = {}
    for rid, rec in by_id.items():
        prior = previous.get(rid)
        if rid in pinned:
            prior = pinned[rid]  # a person's placement replaces where automatic linking had put it
        elif forbidden.get(rid) == prior:
            prior = None  # a record split off by a person no longer claims that study
        comps[rid] = _Component(rec, prior, pinned.get(rid), forbidden.get(rid))
        parent[rid] = rid

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    edges, conflicts = _candidate_edges(list(by_id.values()), fuzzy_threshold, registry_title_threshold)
    edges.sort(key=lambda e: (METHOD_RANK[e.method], -e.score, e.a, e.b))
    accepted: dict[str, list[_Edge]] = defaultdict(list)
    for e in edges:
        ra, rb = find(e.a), find(e.b)
        if ra == rb:
            accepted[e.a].append(e)
            accepted[e.b].append(e)
            continue
        ca, cb = comps[ra], comps[rb]
        reason = _refusal(ca, cb, e)
        if reason:
            conflicts.append(Conflict(e.b, e.a, e.method, reason))
            continue
        small, big = (ra, rb) if len(ca.members) < len(cb.members) else (rb, ra)
        parent[small] = big
        cs, cbig = comps[small], comps[big]
        cbig.members += cs.members
        for attr in ("registry", "ncts", "priors", "pinned", "forbidden", "marks"):
            theirs = getattr(cs, attr)
            if theirs:
                setattr(cbig, attr, getattr(cbig, attr) | theirs)
        del comps[small]
        accepted[e.a].append(e)
        accepted[e.b].append(e)

    return _assign(by_id, comps, accepted, pinned, forbidden, previous, list(known_studies), conflicts)


def _refusal(ca: _Component, cb: _Component, e: _Edge) -> str | None:
    if (
        ca.registry
        and cb.registry
        and not (e.method == "nct" and e.a in ca.registry | cb.registry and e.b in ca.registry | cb.registry)
    ):
        return (
            f"would put two registry entries ({', '.join(sorted(ca.registry | cb.registry))}) in one study; "
            f"link by hand if they are one trial"
        )
    if ca.ncts and cb.ncts and not (ca.ncts & cb.ncts):
        return f"names other trial ids ({', '.join(sorted(ca.ncts))} vs {', '.join(sorted(cb.ncts))})"
    if e.method == "fuzzy" and ca.marks and cb.marks and ca.marks != cb.marks:
        # the two titles matched, but other reports already in these studies name different trials
        shown = sorted(", ".join(sorted(t for t, _ in m)) for m in ca.marks | cb.marks)
        return f"titles of these studies' reports name different trials ({' / '.join(shown)}); link by hand if one"
    if ca.pinned and cb.pinned and ca.pinned != cb.pinned:
        return f"a person placed these records in different studies ({', '.join(sorted(ca.pinned | cb.pinned))})"
    for x, y in ((ca, cb), (cb, ca)):
        if x.forbidden & (y.priors | y.pinned):
            return f"a person split this record from study {', '.join(sorted(x.forbidden & (y.priors | y.pinned)))}"
        if x.pinned and y.priors and y.priors != x.pinned:
            return (
                f"a person placed a record in {', '.join(sorted(x.pinned))}; automatic linking does not move "
                f"study {', '.join(sorted(y.priors))} there"
            )
    return None


def _assign(
    by_id: dict[str, LinkRecord],
    comps: dict[str, _Component],
    accepted: dict[str, list[_Edge]],
    pinned: dict[str, str],
    forbidden: dict[str, str],
    previous: dict[str, str],
    known: list[str],
    conflicts: list[Conflict],
) -> Linking:
    out = Linking(conflicts=conflicts)
    order = {s: i for i, s in enumerate(known)}
    taken = set(known)
    roots = sorted(comps, key=lambda r: min(comps[r].members))
    study_of_root: dict[str, str] = {}
    for root in roots:  # a person's placement first
        c = comps[root]
        if c.pinned:
            study_of_root[root] = sorted(c.pinned)[0]
    # then stable ids: the component holding most of a study's former records keeps its id
    claims = []
    for root in roots:
        if root in study_of_root:
            continue
        counts: dict[str, int] = defaultdict(int)
        for m in comps[root].members:
            p = previous.get(m)
            if p and p in comps[root].priors:
                counts[p] += 1
        for s, n in counts.items():
            claims.append((-n, order.get(s, len(order)), s, min(comps[root].members), root))
    # a person's placement and the records automatic linking keeps in that study share its id
    used: set[str] = set()
    for _, _, s, _, root in sorted(claims):
        if root in study_of_root or s in used:
            continue
        study_of_root[root] = s
        used.add(s)
    for root in roots:
        if root in study_of_root:
            continue
        members = [by_id[m] for m in sorted(comps[root].members)]
        sid, label = _new_study_id(members, taken)
        taken.add(sid)
        out.new_studies[sid] = label
        study_of_root[root] = sid
        for s in sorted(comps[root].priors):
            out.split.append((s, sid))
    # studies whose records all went elsewhere were merged into the study that took them
    landed: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for root, sid in study_of_root.items():
        for m in comps[root].members:
            p = previous.get(m)
            if p and p != sid:
                landed[p][sid] += 1
    kept = used | set(study_of_root.values())
    for old, targets in sorted(landed.items()):
        if old in kept:
            continue
        into = max(sorted(targets), key=lambda s: targets[s])
        out.merged.append((old, into, f"its records now belong to {into}"))
    for root in roots:
        sid = study_of_root[root]
        for m in sorted(comps[root].members):
            if m in pinned:
                out.links.append(Link(m, sid, "manual", None, "placed by a person"))
                continue
            inc = sorted(accepted.get(m, []), key=lambda e: (METHOD_RANK[e.method], -e.score))
            if inc:
                e = inc[0]
                out.links.append(Link(m, sid, e.method, e.score, e.evidence))
            elif m in forbidden:
                out.links.append(Link(m, sid, "manual", None, f"split from {forbidden[m]} by a person"))
            else:
                out.links.append(Link(m, sid, "singleton", None, "no other record of this study"))
    return out
