"""Simulated screening: protocol, determinism, CSV reading, and the reference figures."""

from pathlib import Path

import numpy as np
import pytest

from livingmeta.screening.simulation import LabelledDataError, draw_priors, parse_labelled_csv, simulate

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SCREENING_DEV = SHARED / "datasets" / "screening" / "dev"

TOPIC = ["statin", "ldl", "cholesterol", "lipid", "atorvastatin", "coronary", "lowering", "simvastatin"]
OTHER = [
    "asthma", "inhaler", "fracture", "hip", "depression", "sertraline", "malaria", "vaccine",
    "dental", "caries", "glaucoma", "eye", "migraine", "sleep", "obesity", "surgery",
    "wound", "burn", "kidney", "dialysis", "hepatitis", "liver", "skin", "eczema",
]
COMMON = ["randomised", "trial", "patients", "effect", "study", "outcome", "adults", "placebo"]


def synthetic_review(n: int = 60, n_included: int = 10, seed: int = 11) -> tuple[list[str], np.ndarray]:
    """Short texts; included ones share topic words, all share common trial words."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        included = i % (n // n_included) == 0
        words = list(rng.choice(COMMON, 4)) + list(rng.choice(OTHER, 4))
        if included:
            words += list(rng.choice(TOPIC, 3))
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(int(included))
    return texts, np.asarray(labels)


def test_priors_are_drawn_as_documented():
    labels = np.array([0, 1, 0, 0, 1, 1, 0, 1, 0, 0])
    rng = np.random.default_rng(5)
    expected = (int(rng.choice(np.flatnonzero(labels == 1))), int(rng.choice(np.flatnonzero(labels == 0))))
    assert draw_priors(labels, 5) == expected
    inc, exc = draw_priors(labels, 5)
    assert labels[inc] == 1 and labels[exc] == 0


def test_simulation_finds_includes_early_on_shared_vocabulary():
    texts, labels = synthetic_review()
    assert labels.sum() == 10
    wss_values = []
    for seed in (0, 1, 2):
        result = simulate(texts, labels, {"name": "tfidf-svm"}, seed=seed)
        assert result.order.size == 58 and result.order.sum() == 9
        assert labels[list(result.priors)].tolist() == [1, 0]
        assert set(result.screened.tolist()).isdisjoint(result.priors)
        # The walk stops at the last include, so it ends on one.
        assert labels[result.screened[-1]] == 1
        wss_values.append(result.metrics["wss95_strict"])
    # N = 58, 9 includes to find: a perfect order gives (58 - 9)/58 - 0.05 = 0.795, random
    # screening about 0. 0.6 still allows n95 up to 20, i.e. 11 excludes before the 9th include:
    # the topic words make includes separable, so anything below that is a broken ranker.
    assert min(wss_values) > 0.6


def test_simulation_is_deterministic_given_a_seed():
    texts, labels = synthetic_review(seed=3)
    a = simulate(texts, labels, {"name": "tfidf-svm"}, seed=4)
    b = simulate(texts, labels, {"name": "tfidf-svm"}, seed=4)
    assert a.priors == b.priors
    assert a.screened.tolist() == b.screened.tolist()
    assert a.metrics == b.metrics
    c = simulate(texts, labels, {"name": "tfidf-svm"}, seed=9)
    assert c.priors != a.priors


def test_simulation_refuses_unusable_labels():
    texts, labels = synthetic_review()
    with pytest.raises(ValueError, match="at least 2 included"):
        simulate(texts, np.where(np.arange(60) == 0, 1, 0), {}, seed=0)
    with pytest.raises(ValueError, match="one label per text"):
        simulate(texts, labels[:-1], {}, seed=0)


def test_csv_missing_abstract_is_empty_text():
    text = 'title,abstract,label_included\nStatin trial,,1\n"Asthma, inhalers",Abstract here,0\n'
    data = parse_labelled_csv(text, "x.csv")
    assert data.texts == ["Statin trial", "Asthma, inhalers Abstract here"]
    assert data.labels.tolist() == [1, 0]
    no_column = parse_labelled_csv("title,label_included\nA,1\nB,0.0\n", "y.csv")
    assert no_column.texts == ["A", "B"] and no_column.labels.tolist() == [1, 0]


def test_csv_bad_label_names_file_line_field_and_record():
    text = (
        "title,abstract,label_included\n"
        'First,"an abstract\nspanning two lines",1\n'
        "Second,fine,0\n"
        "Third record,abs,yes\n"
    )
    with pytest.raises(LabelledDataError) as err:
        parse_labelled_csv(text, "review.csv")
    message = str(err.value)
    assert "review.csv, line 5" in message
    assert "label_included" in message and "'yes'" in message and "Third record" in message
    assert "use 1 for included or 0 for excluded" in message


def test_csv_missing_column_and_empty_file():
    with pytest.raises(LabelledDataError, match="missing column 'label_included'"):
        parse_labelled_csv("title,abstract\nA,B\n", "a.csv")
    with pytest.raises(LabelledDataError, match="empty"):
        parse_labelled_csv("", "b.csv")
    with pytest.raises(LabelledDataError, match="no records"):
        parse_labelled_csv("title,abstract,label_included\n", "c.csv")


# ASReview LAB ELAS u4 figures from shared/datasets/screening/README.md (3 seeds, mean), given
# to one decimal in percent: our tfidf-svm replicates that model, so it must agree to within
# the README's rounding.
README_ROUNDING = 0.0005 + 1e-9
ASREVIEW_U4 = {
    "cohen_NSAIDS": {"wss95": 0.720, "rrf10": 0.558, "atd": 0.095},
    "cohen_Antihistamines": {"wss95": 0.214, "rrf10": 0.400, "atd": 0.248},
}


@pytest.mark.parametrize("name", sorted(ASREVIEW_U4))
def test_baseline_reproduces_asreview_elas_u4(name):
    path = SCREENING_DEV / f"{name}.csv"
    if not path.exists():
        pytest.skip(f"shared data set {path} is not available")
    data = parse_labelled_csv(path.read_text(encoding="utf-8"), str(path))
    runs = [simulate(data.texts, data.labels, {"name": "tfidf-svm"}, seed=s).metrics for s in (0, 1, 2)]
    for key, expected in ASREVIEW_U4[name].items():
        assert np.mean([r[key] for r in runs]) == pytest.approx(expected, abs=README_ROUNDING), key
