import re

import numpy as np
import pytest

from atb.arch import (
    BERT_BASE, SUPERPLM_BASE, Arch, archs_to_array, cost_terms, fast_rule_mask, get_space,
)
from atb.errors import ArchSpecError


def test_parse_and_format_round_trip():
    arch = Arch.parse("5-564-1054-8-512")
    assert (arch.lt, arch.dm, arch.df, arch.h, arch.dqkv) == (5, 564, 1054, 8, 512)
    assert str(arch) == "5-564-1054-8-512"
    assert arch.head_size == 64


@pytest.mark.parametrize("text", ["", "5-564-1054-8", "5-564-1054-8-512-1", "a-b-c-d-e", "5-0-1054-8-512",
                                  "5--564-1054-8-512", "-5-564-1054-8-512"])
def test_malformed_arch_strings_are_rejected(text):
    with pytest.raises(ArchSpecError):
        Arch.parse(text)


def test_dqkv_must_split_into_heads():
    with pytest.raises(ArchSpecError, match="divisible"):
        Arch(2, 128, 256, 3, 128)


def test_paper_spaces():
    pre, kd = get_space("pretrain"), get_space("kd")
    assert pre.contains(Arch.parse("5-564-1056-8-512"))
    assert kd.contains(Arch.parse("5-564-1056-12-516"))
    # the paper's own example has df=1054, off the step-4 grid of Table 6: outside the space
    assert "df=1054" in pre.violations(Arch.parse("5-564-1054-8-512"))[0]
    assert pre.largest == SUPERPLM_BASE
    assert pre.size == 8 * 161 * 737 * 12
    assert kd.size == 8 * 161 * 737 * 50
    assert kd.ranges["dqkv"].lo == 180 and kd.ranges["dqkv"].hi == 768 and kd.ranges["dqkv"].step == 12


@pytest.mark.parametrize("space,text,rule", [
    ("pretrain", "9-564-1054-8-512", "lt=9"),
    ("pretrain", "5-566-1054-8-512", "dm=566"),
    ("pretrain", "5-564-1054-8-640", "64*h"),
    ("kd", "5-564-1054-8-512", "h=8"),
    ("kd", "5-564-1054-12-120", "dqkv=120"),
    ("pretrain", str(BERT_BASE), "lt=12"),
])
def test_validation_names_the_broken_rule(space, text, rule):
    with pytest.raises(ArchSpecError, match=re.escape(rule)):
        get_space(space).validate(text)


def test_small_super_config_space():
    small = get_space("pretrain", "small")
    for text in ("2-128-256-2-128", "2-128-200-1-64", "4-384-1536-6-384"):
        assert small.contains(Arch.parse(text))
    assert not small.contains(Arch.parse("5-384-1536-6-384"))


@pytest.mark.parametrize("name", ["pretrain", "kd"])
def test_sampling_is_seeded_and_inside_the_space(name):
    space = get_space(name)
    a = space.sample_array(np.random.default_rng(3), 2000)
    b = space.sample_array(np.random.default_rng(3), 2000)
    assert np.array_equal(a, b)
    assert space.contains_array(a).all()
    assert len({tuple(r) for r in a}) > 1900  # uniform over a huge space: few repeats
    for arch in space.sample(np.random.default_rng(0), 50):
        space.validate(arch)


@pytest.mark.parametrize("name", ["pretrain", "kd"])
def test_mutation_stays_in_space_and_changes_genes(name):
    space, rng = get_space(name), np.random.default_rng(0)
    parent = space.sample(rng)[0]
    children = [space.mutate(parent, rng, prob=0.5) for _ in range(50)]
    assert all(space.contains(c) for c in children)
    assert any(c != parent for c in children)
    assert all(c == parent for c in (space.mutate(parent, rng, prob=0.0) for _ in range(5)))
    batch = space.mutate_array(archs_to_array([parent] * 100), rng, 0.5)
    assert space.contains_array(batch).all()


def test_cost_model_matches_bert_base():
    assert BERT_BASE.params() == 109_482_240  # transformers.BertModel (with pooler)
    terms = cost_terms(archs_to_array([BERT_BASE]), 128)
    # 12 layers x 128 tokens x (4 dm^2 + 2 dm df) + attention 12 x 2 x 128^2 x 768 + pooler
    expected = 12 * 128 * (4 * 768 * 768 + 2 * 768 * 3072) + 12 * 2 * 128 * 128 * 768 + 768 * 768
    assert terms["total_macs"][0] == expected
    assert BERT_BASE.macs(64) < BERT_BASE.macs(128)


def test_fast_rule():
    inside, too_wide = Arch(4, 500, 850, 8, 400), Arch(4, 500, 2000, 8, 400)
    assert fast_rule_mask(archs_to_array([inside, too_wide])).tolist() == [True, False]
    assert fast_rule_mask(archs_to_array([Arch(4, 500, 850, 5, 500), Arch(4, 500, 850, 5, 320)])).tolist() == [True, False]
