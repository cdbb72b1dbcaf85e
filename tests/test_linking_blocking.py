"""First-load linking compares titles only where a rule can tie them (blocking), and finds what comparing every
pair finds."""

from __future__ import annotations

import random

import numpy as np
from rapidfuzz import fuzz, process

from livingmeta.linking import (
    FUZZY_THRESHOLD,
    REGISTRY_TITLE_THRESHOLD,
    LinkRecord,
    _fuzzy_edges,
    _similar_titles,
    _sorted_tokens,
    author_surname,
    link_records,
    title_difference,
)

WORDS = ("pain neuropathy immunoglobulin intravenous placebo chronic efficacy safety dose weeks outcome patients "
         "multifocal motor inflammatory demyelinating polyneuropathy maintenance subcutaneous infusion").split()


def _title(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14)))


def _mutated(rng: random.Random, title: str) -> str:
    chars = list(title)
    for _ in range(rng.randint(0, 3)):
        k = rng.randrange(len(chars))
        op = rng.random()
        if op < 0.4:
            del chars[k]
        elif op < 0.8:
            chars.insert(k, rng.choice("abcdefghij "))
        else:
            chars[k] = rng.choice("xyz")
    return "".join(chars)


def test_length_bands_find_every_pair_that_comparing_all_pairs_finds():
    rng = random.Random(3)
    left = [_title(rng) for _ in range(300)]
    right = [_mutated(rng, rng.choice(left)) if rng.random() < 0.5 else _title(rng) for _ in range(250)]
    right += ["", "x", left[0]]
    for cutoff in (REGISTRY_TITLE_THRESHOLD, FUZZY_THRESHOLD, 80.0):
        full = process.cdist(left, right, scorer=fuzz.ratio, score_cutoff=cutoff)
        want = sorted((int(i), int(j), float(full[i, j])) for i, j in zip(*np.nonzero(full)))
        got = _similar_titles(left, right, cutoff)
        assert got == want, cutoff
        # compared a few rows at a time (what a large review's bands do): the same pairs in the same order
        assert _similar_titles(left, right, cutoff, cells=700) == want, cutoff
        assert _similar_titles(left, right, cutoff, cells=1) == want, cutoff
        assert len(want) > 20  # the data do have matches to find


def _brute_force_pairs(records: list[LinkRecord]) -> set[tuple[str, str]]:
    """Every publication pair the title rule accepts, by comparing all pairs (what blocking must reproduce)."""
    pubs = [r for r in records if r.source != "ctgov"]
    out = set()
    for x in range(len(pubs)):
        for y in range(x + 1, len(pubs)):
            a, b = pubs[x], pubs[y]
            sa, sb = author_surname(a.authors[0]).lower(), author_surname(b.authors[0]).lower()
            if sa != sb or (a.year is not None and b.year is not None and abs(a.year - b.year) > 1):
                continue
            if fuzz.ratio(_sorted_tokens(a.title), _sorted_tokens(b.title)) >= FUZZY_THRESHOLD \
                    and title_difference(a.title, b.title) is None:
                out.add(tuple(sorted((a.record_id, b.record_id))))
    return out


def test_blocked_title_matches_equal_all_pairs_including_undated_and_cross_year_pairs():
    rng = random.Random(11)
    authors = ["Smith J", "Jones AB", "van der Berg C", "Lee K"]
    records: list[LinkRecord] = []
    pmid = 1000
    for _ in range(120):
        title = _title(rng)
        for _ in range(rng.randint(1, 3)):  # reports of one trial: near-identical titles, a year apart, or undated
            pmid += rng.randint(1, 5_000_000)  # PMIDs of 4 to 8 digits: record-id order is not date order
            year = rng.choice([2010, 2011, 2012, None])
            records.append(LinkRecord(f"pubmed:{pmid}", "pubmed", _mutated(rng, title) if rng.random() < 0.5 else title,
                                      (rng.choice(authors),), year))
    records.sort(key=lambda r: r.record_id)
    edges = _fuzzy_edges(records, FUZZY_THRESHOLD, REGISTRY_TITLE_THRESHOLD)
    got = {tuple(sorted((e.a, e.b))) for e in edges}
    want = _brute_force_pairs(records)
    assert got == want
    assert len(want) > 15


def test_an_undated_report_after_a_dated_one_is_compared():
    # the dated record sorts first; comparing undated records only with records after them missed this pair
    dated = LinkRecord("pubmed:1000", "pubmed", "Intravenous immunoglobulin for chronic pain in neuropathy",
                       ("Smith J",), 2012)
    # a typo in a long word: the titles' content words differ, so only the title comparison can tie them
    undated = LinkRecord("pubmed:2000", "pubmed", "Intravenous immunoglobolin for chronic pain in neuropathy",
                         ("Smith J",), None)
    result = link_records([dated, undated])
    assert len({lk.study_id for lk in result.links}) == 1
    assert {lk.method for lk in result.links} == {"fuzzy"}


def test_a_report_of_the_year_before_that_sorts_after_the_later_one_is_compared():
    # "pubmed:900" sorts after "pubmed:1000": the earlier year's record comes second in record-id order
    later = LinkRecord("pubmed:1000", "pubmed", "Intravenous immunoglobulin for chronic pain in neuropathy",
                       ("Smith J",), 2013)
    earlier = LinkRecord("pubmed:900", "pubmed", "Intravenous immunoglobolin for chronic pain in neuropathy",
                         ("Smith J",), 2012)
    result = link_records([later, earlier])
    assert len({lk.study_id for lk in result.links}) == 1
    assert {lk.method for lk in result.links} == {"fuzzy"}
