"""kjv-next: leak-free by chapter, balanced, kept out of the supernet corpus, and beyond the
reach of a bag of words by construction."""

from __future__ import annotations

import numpy as np
import pytest

from atb import kjv
from atb.eval import kjv_next
from atb.eval.baselines import bag_of_words
from atb.eval.tasks import SPLITS, Split, Task


@pytest.fixture(scope="module")
def task():
    return kjv_next.build()


def test_no_chapter_in_two_splits(task):
    chapters = {name: set(task.split(name).groups) for name in SPLITS}
    assert not chapters["train"] & chapters["validation"]
    assert not chapters["train"] & chapters["test"]
    assert not chapters["validation"] & chapters["test"]
    for name in SPLITS:
        assert {kjv.split_of(c) for c in chapters[name]} == {name}


def test_every_split_is_balanced(task):
    for name in SPLITS:
        labels = task.split(name).labels
        assert abs(int(labels.sum()) - len(labels) / 2) <= 0.5
    assert task.num_classes == 2 and task.is_pair_task


def test_next_pairs_follow_and_others_come_from_another_chapter_of_the_book(task):
    chapters = kjv.read_chapters()
    book = {key: (c.testament, c.book) for key, c in chapters.items()}
    follows = {}  # (chapter, passage) -> the passage that follows it
    seconds = {}  # passage -> the chapters where it is a pair's second (a few repeat verbatim)
    for key, c in chapters.items():
        for a, b in kjv_next.chapter_pairs(c.verses):
            follows[key, a] = b
            seconds.setdefault(b, set()).add(key)
    for i in range(0, len(task.test), 37):
        first, second, chapter = task.test.texts[i], task.test.pairs[i], task.test.groups[i]
        if task.test.labels[i] == 0:
            assert follows[chapter, first] == second
        else:
            assert (chapter, first) in follows
            others = seconds[second] - {chapter}
            assert any(book[o] == book[chapter] and kjv.split_of(o) == "test" for o in others)


def test_no_evaluation_passage_is_in_the_supernet_corpus(task):
    from atb.supernet.data import kjv_documents

    corpus = "\n".join(kjv_documents())
    for split in ("validation", "test"):
        texts = task.split(split).texts
        for text in texts[::max(1, len(texts) // 40)]:
            assert text not in corpus
    assert task.train.texts[0] in corpus  # training chapters stay in


def test_a_bag_of_words_is_at_chance_by_construction(task):
    """Both kinds of second passage come from the same distribution, so no bag of words of
    either passage, or of both, can tell the classes apart beyond sampling noise."""
    small = task.subsample({"train": 600, "validation": 200, "test": 500}, seed=1)
    n = len(small.test)
    chance = 3 * 0.5 / np.sqrt(n)  # three standard errors of an accuracy at 50%
    for side_by_side in (False, True):
        result = bag_of_words(small, side_by_side=side_by_side)
        assert abs(result["accuracy"] - 0.5) < chance
    only_second = Task("second", task.label_names,  # the second passages alone
                       Split(small.train.pairs, small.train.labels),
                       Split(small.validation.pairs, small.validation.labels),
                       Split(small.test.pairs, small.test.labels))
    assert abs(bag_of_words(only_second)["accuracy"] - 0.5) < chance


def test_the_task_is_deterministic(task):
    kjv_next.build.cache_clear()
    again = kjv_next.build()
    assert again.test.texts == task.test.texts and again.test.pairs == task.test.pairs
    assert np.array_equal(again.train.labels, task.train.labels)
