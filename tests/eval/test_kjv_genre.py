import numpy as np

from atb import kjv as bible
from atb.eval import kjv_genre, load_task
from atb.eval.tasks import SPLITS


def test_builtin_task_is_found_by_name():
    task = load_task("kjv-genre")
    assert task.name == "kjv-genre" and task.num_classes == len(kjv_genre.GENRES) == 8


def test_no_chapter_is_in_two_splits():
    task = kjv_genre.build()
    chapters = {name: set(task.split(name).groups) for name in SPLITS}
    assert not chapters["train"] & chapters["validation"]
    assert not chapters["train"] & chapters["test"]
    assert not chapters["validation"] & chapters["test"]
    assert all(len(task.split(name).groups) == len(task.split(name)) for name in SPLITS)


def test_classes_are_balanced_and_capped():
    task = kjv_genre.build()
    for name in SPLITS:
        counts = np.bincount(task.split(name).labels, minlength=task.num_classes)
        assert counts.max() <= kjv_genre.PER_CLASS[name]
        assert counts.max() / counts.sum() <= 0.2  # the majority baseline stays informative
    assert len(task.train) >= 2000 and len(task.test) >= 500


def test_passages_are_short_and_free_of_verse_references():
    task = kjv_genre.build()
    words = [len(t.split()) for t in task.train.texts + task.test.texts]
    assert max(words) <= kjv_genre.MAX_WORDS and np.median(words) >= 20
    assert not any(bible._VERSE_REF.search(t) for t in task.test.texts)


def test_passage_grouping():
    short, long = "one two three", " ".join(["w"] * 40)
    assert kjv_genre.passages([short] * 7) == [" ".join([short] * 3)] * 2 + [short]
    assert kjv_genre.passages([long, short]) == [long, short]
    assert kjv_genre.passages([short, " ".join(["w"] * 89)]) == [short, " ".join(["w"] * 89)]


def test_genres_cover_the_books_once():
    books = [(t, b) for _, t, first, last in kjv_genre.GENRES for b in range(first, last + 1)]
    assert len(books) == len(set(books)) == 66


def test_subsample_caps_every_class_and_keeps_chapters_apart():
    task = kjv_genre.build()
    small = task.subsample({"train": 100, "validation": 20, "test": 50})
    assert small.sizes() == {"n_train": 800, "n_validation": 160, "n_test": 400, "num_classes": 8}
    assert set(small.test.groups) <= set(task.test.groups)
    assert small.subsample(10).test.texts == small.subsample(10).test.texts  # seeded
