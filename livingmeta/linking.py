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

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process

# the order in which evidence is trusted; an earlier method wins when two could tie the same records
METHOD_RANK = {"nct": 0, "registry": 1, "pmid": 2, "doi": 3, "fuzzy": 4}
FUZZY_THRESHOLD = 92.0  # publication vs publication, same first author, years at most 1 apart
REGISTRY_TITLE_THRESHOLD = 95.0  # publication vs registry title, when the publication names no trial id
MIN_TITLE_CHARS = 25  # shorter titles ("Erratum", "Letter") say too little to link on


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


class _Component:
    __slots__ = ("members", "registry", "ncts", "priors", "pinned", "forbidden")

    def __init__(self, rec: LinkRecord, prior: str | None, pinned: str | None, forbidden: str | None):
        self.members = [rec.record_id]
        self.registry = {rec.record_id} if rec.source == "ctgov" else set()
        self.ncts = {r for r in rec.registry_ids if r.startswith("NCT")}
        self.priors = {prior} if prior else set()
        self.pinned = {pinned} if pinned else set()
        self.forbidden = {forbidden} if forbidden else set()


def normalise_title(title: str) -> str:
    """A title reduced for comparison: ASCII, lower case, no markup or punctuation, single spaces."""
    t = re.sub(r"<[^>]+>", " ", title or "")
    t = unicodedata.normalize("NFKD", t).encode("ascii", "ignore").decode()
    t = re.sub(r"[^a-z0-9]+", " ", t.lower())
    return " ".join(t.split())


def _sorted_tokens(title: str) -> str:
    return " ".join(sorted(normalise_title(title).split()))


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


def _candidate_edges(records: Sequence[LinkRecord], fuzzy_threshold: float,
                     registry_title_threshold: float) -> tuple[list[_Edge], list[Conflict]]:
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
                conflicts.append(Conflict(pub.record_id, r.record_id, "pmid",
                                          f"{r.record_id} lists PMID {pmid} as its publication, but that publication "
                                          f"names {', '.join(sorted(own))}; not linked"))
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
    edges.extend(_fuzzy_edges(records, fuzzy_threshold, registry_title_threshold))
    return edges, conflicts


def _fuzzy_edges(records: Sequence[LinkRecord], threshold: float, registry_threshold: float) -> list[_Edge]:
    pubs = [r for r in records if r.source != "ctgov" and len(normalise_title(r.title)) >= MIN_TITLE_CHARS]
    regs = [r for r in records if r.source == "ctgov"]
    edges: list[_Edge] = []
    # token-sort ratio = plain ratio of the sorted tokens: sort once here, not inside every comparison
    titles = [_sorted_tokens(r.title) for r in pubs]
    by_year: dict[int | None, list[int]] = defaultdict(list)
    for i, r in enumerate(pubs):
        by_year[r.year].append(i)
    years = sorted(y for y in by_year if y is not None)
    blocks: list[tuple[list[int], list[int]]] = []
    for y in years:  # each year against itself and the next (reports of one trial appear within a year or so)
        blocks.append((by_year[y], by_year[y] + by_year.get(y + 1, [])))
    if by_year.get(None):
        blocks.append((by_year[None], list(range(len(pubs)))))
    seen: set[tuple[int, int]] = set()
    for left, right in blocks:
        if not left or len(right) < 2:
            continue
        scores = process.cdist([titles[i] for i in left], [titles[j] for j in right], scorer=fuzz.ratio,
                               score_cutoff=threshold, workers=-1)
        for li, rj in zip(*scores.nonzero()):
            i, j = left[int(li)], right[int(rj)]
            if i >= j or (i, j) in seen:
                continue
            seen.add((i, j))
            a, b = pubs[i], pubs[j]
            sa = author_surname(a.authors[0]).lower() if a.authors else None
            sb = author_surname(b.authors[0]).lower() if b.authors else None
            if not (sa and sb and sa == sb):
                continue  # different (or unknown) first authors: similar titles alone do not make one trial
            if a.year is not None and b.year is not None and abs(a.year - b.year) > 1:
                continue
            score = float(scores[li, rj])
            edges.append(_Edge(a.record_id, b.record_id, "fuzzy", round(score / 100, 4),
                               f"title {score:.0f}% alike, first author {author_surname(a.authors[0])}, "
                               f"years {a.year}/{b.year}"))
    lonely = [r for r in pubs if not any(x.startswith("NCT") for x in r.registry_ids)]
    if lonely and regs:
        reg_titles, reg_of = [], []
        for k, r in enumerate(regs):
            for t in (r.title, *r.alt_titles):
                if len(normalise_title(t)) >= MIN_TITLE_CHARS:
                    reg_titles.append(_sorted_tokens(t))
                    reg_of.append(k)
        if reg_titles:
            scores = process.cdist([_sorted_tokens(r.title) for r in lonely], reg_titles, scorer=fuzz.ratio,
                                   score_cutoff=registry_threshold, workers=-1)
            best: dict[tuple[int, int], float] = {}
            for li, rj in zip(*scores.nonzero()):
                key = (int(li), reg_of[int(rj)])
                best[key] = max(best.get(key, 0.0), float(scores[li, rj]))
            for (li, k), score in sorted(best.items()):
                edges.append(_Edge(regs[k].record_id, lonely[li].record_id, "fuzzy", round(score / 100, 4),
                                   f"title {score:.0f}% alike the registry title of {regs[k].record_id}"))
    return edges


def _new_study_id(members: Sequence[LinkRecord], taken: set[str]) -> tuple[str, str]:
    pubs = sorted((r for r in members if r.source != "ctgov"),
                  key=lambda r: (r.year is None, r.year or 0, r.record_id))
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
    return sid, (label if sid == base else f"{label}{sid[len(base):]}")


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
        for attr in ("registry", "ncts", "priors", "pinned", "forbidden"):
            getattr(cbig, attr).update(getattr(cs, attr))
        del comps[small]
        accepted[e.a].append(e)
        accepted[e.b].append(e)

    return _assign(by_id, comps, accepted, pinned, forbidden, previous, list(known_studies), conflicts)


def _refusal(ca: _Component, cb: _Component, e: _Edge) -> str | None:
    if ca.registry and cb.registry and not (e.method == "nct" and e.a in ca.registry | cb.registry
                                            and e.b in ca.registry | cb.registry):
        return (f"would put two registry entries ({', '.join(sorted(ca.registry | cb.registry))}) in one study; "
                f"link by hand if they are one trial")
    if ca.ncts and cb.ncts and not (ca.ncts & cb.ncts):
        return f"names other trial ids ({', '.join(sorted(ca.ncts))} vs {', '.join(sorted(cb.ncts))})"
    if ca.pinned and cb.pinned and ca.pinned != cb.pinned:
        return f"a person placed these records in different studies ({', '.join(sorted(ca.pinned | cb.pinned))})"
    for x, y in ((ca, cb), (cb, ca)):
        if x.forbidden & (y.priors | y.pinned):
            return f"a person split this record from study {', '.join(sorted(x.forbidden & (y.priors | y.pinned)))}"
        if x.pinned and y.priors and y.priors != x.pinned:
            return (f"a person placed a record in {', '.join(sorted(x.pinned))}; automatic linking does not move "
                    f"study {', '.join(sorted(y.priors))} there")
    return None


def _assign(by_id: dict[str, LinkRecord], comps: dict[str, _Component], accepted: dict[str, list[_Edge]],
            pinned: dict[str, str], forbidden: dict[str, str], previous: dict[str, str], known: list[str],
            conflicts: list[Conflict]) -> Linking:
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
