"""Slicing parity: the sliced SuperPLM computes exactly what the extracted sub-model does."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from atb.arch import Arch, SearchSpace, get_space
from atb.errors import UsageError
from atb.supernet.elastic import DEPTHS, SuperPLM, layer_indices, qkv_rows
from atb.supernet.extract import extract_model, sub_state_dict


def _padded_batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, 8000, (3, 19), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 11:] = 0  # padding inside the batch must be masked out
    mask[2, 4:] = 0
    return ids, mask, torch.zeros_like(ids)


def _max_diff(net: SuperPLM, arch: Arch) -> float:
    ids, mask, types = _padded_batch()
    with torch.no_grad():
        hidden, pooled = net(ids, mask, types, arch=arch)
        out = extract_model(net, arch)(ids, attention_mask=mask, token_type_ids=types)
    return max((hidden - out.last_hidden_state).abs().max().item(),
               (pooled - out.pooler_output).abs().max().item())


@pytest.mark.parametrize("strategy", ["pretrain", "kd"])
def test_sliced_equals_extracted_tiny(tiny_spaces, strategy):
    space = tiny_spaces[strategy]
    torch.manual_seed(1)
    net = SuperPLM(space).eval()
    archs = space.sample(np.random.default_rng(2), 8) + [space.smallest, space.largest]
    for arch in archs:
        assert _max_diff(net, arch) <= 1e-5, arch


@pytest.mark.parametrize("strategy", ["pretrain", "kd"])
def test_sliced_equals_extracted_small_space(strategy):
    space = get_space(strategy, "small")
    torch.manual_seed(0)
    net = SuperPLM(space).eval()
    must = [Arch(2, 128, 256, 2, 128), Arch(2, 128, 200, 1, 64)] if strategy == "pretrain" else []
    for arch in must + space.sample(np.random.default_rng(3), 3):
        assert _max_diff(net, arch) <= 1e-5, arch


def test_small_space_contains_demo_archs_and_is_cpu_sized():
    space = get_space("pretrain", "small")
    assert space.contains(Arch(2, 128, 256, 2, 128))
    assert space.contains(Arch(2, 128, 200, 1, 64))
    assert space.super_arch == Arch(4, 384, 1536, 6, 384)


def test_kd_rows_take_leading_dims_of_every_head(tiny_spaces):
    space = tiny_spaces["kd"]  # 2 heads of 64 dims
    rows = qkv_rows(space, Arch(1, 128, 128, 2, 60))
    assert rows.tolist() == list(range(30)) + list(range(64, 94))
    assert qkv_rows(tiny_spaces["pretrain"], Arch(1, 128, 128, 1, 64)) == slice(0, 64)


def test_extracted_weights_are_leading_submatrices(tiny_spaces):
    torch.manual_seed(0)
    net = SuperPLM(tiny_spaces["pretrain"])
    arch = Arch(1, 132, 140, 1, 64)
    sd = sub_state_dict(net, arch)
    full = net.encoder.layer[0]
    assert torch.equal(sd["encoder.layer.0.intermediate.dense.weight"],
                       full.intermediate.dense.weight[:140, :132])
    assert torch.equal(sd["encoder.layer.0.attention.output.dense.weight"],
                       full.attention.output.dense.weight[:132, :64])
    assert sd["embeddings.word_embeddings.weight"].shape == (30522, 132)
    assert not any(k.startswith("encoder.layer.1.") for k in sd)


def test_padding_is_masked(tiny_spaces):
    """Changing what sits under the padding must not change the real tokens' states."""
    torch.manual_seed(0)
    net = SuperPLM(tiny_spaces["pretrain"]).eval()
    ids, mask, types = _padded_batch()
    other = ids.clone()
    other[mask == 0] = 4242
    with torch.no_grad():
        a, _ = net(ids, mask, types)
        b, _ = net(other, mask, types)
    keep = mask.bool()
    assert torch.allclose(a[keep], b[keep], atol=1e-6)


def test_in_place_embedding_gradients_equal_autograd_slices():
    """The custom backward of the embedding slices gives autograd's gradients exactly."""
    from atb.supernet.elastic import leading_columns

    weight = torch.nn.Parameter(torch.randn(50, 8))
    ids = torch.randint(0, 50, (3, 5))
    x = torch.randn(4, 6)

    def loss(take):
        return (torch.nn.functional.embedding(ids, take(weight)).square().sum()
                + torch.nn.functional.linear(x, take(weight)).sin().sum())

    loss(lambda w: w[:, :6]).backward()
    expected, weight.grad = weight.grad.clone(), None
    loss(lambda w: leading_columns(w, 6)).backward()
    assert torch.equal(weight.grad, expected)


FOUR_LAYERS = SearchSpace("pretrain", Arch(4, 160, 192, 2, 128))  # depth rules differ below 4


@pytest.mark.parametrize("lt, spread", [(1, [5]), (2, [2, 5]), (3, [1, 3, 5]), (4, [1, 2, 4, 5]),
                                        (5, [0, 1, 3, 4, 5]), (6, [0, 1, 2, 3, 4, 5])])
def test_layer_indices_of_six_layers(lt, spread):
    assert layer_indices(lt, 6, "first") == list(range(lt))
    assert layer_indices(lt, 6, "spread") == spread


def test_spread_layers_are_distinct_increasing_and_end_on_the_last():
    for total in range(1, 13):
        for lt in range(1, total + 1):
            got = layer_indices(lt, total, "spread")
            assert len(got) == lt and got[-1] == total - 1
            assert all(a < b for a, b in zip(got, got[1:])) and got[0] >= 0
        assert layer_indices(total, total, "spread") == list(range(total))


def test_unknown_depth_is_a_usage_error():
    with pytest.raises(UsageError, match="first, spread") as err:
        layer_indices(2, 4, "last")
    assert len(err.value.one_line().splitlines()) == 1
    with pytest.raises(UsageError):
        SuperPLM(FOUR_LAYERS, depth="bogus")
    assert DEPTHS == ("first", "spread")


def test_spread_full_model_equals_first():
    """Function preservation at full size does not depend on the rule."""
    torch.manual_seed(0)
    first = SuperPLM(FOUR_LAYERS).eval()
    spread = SuperPLM(FOUR_LAYERS, depth="spread").eval()
    spread.load_state_dict(first.state_dict())
    ids, mask, types = _padded_batch()
    with torch.no_grad():
        a, pa = first(ids, mask, types)
        b, pb = spread(ids, mask, types, arch=FOUR_LAYERS.super_arch)
    assert torch.equal(a, b) and torch.equal(pa, pb)


def test_spread_sub_model_equals_extracted_and_differs_from_first():
    torch.manual_seed(0)
    spread = SuperPLM(FOUR_LAYERS, depth="spread").eval()
    first = SuperPLM(FOUR_LAYERS).eval()
    first.load_state_dict(spread.state_dict())
    ids, mask, types = _padded_batch()
    for arch in (Arch(1, 128, 128, 1, 64), Arch(2, 144, 160, 2, 128), Arch(3, 160, 192, 2, 128)):
        assert _max_diff(spread, arch) <= 1e-5, arch
        with torch.no_grad():
            a, _ = spread(ids, mask, types, arch=arch)
            b, _ = first(ids, mask, types, arch=arch)
        assert (a - b).abs().max().item() > 1e-2, arch


def test_spread_extraction_takes_the_mapped_layers():
    torch.manual_seed(0)
    net = SuperPLM(FOUR_LAYERS, depth="spread")
    sd = sub_state_dict(net, Arch(2, 128, 128, 1, 64))  # layers 1 and 3
    for i, j in enumerate([1, 3]):
        assert torch.equal(sd[f"encoder.layer.{i}.output.dense.bias"],
                           net.encoder.layer[j].output.dense.bias[:128])
    assert not any(k.startswith("encoder.layer.2.") for k in sd)
    first = sub_state_dict(net, Arch(2, 128, 128, 1, 64), depth="first")  # the override
    assert torch.equal(first["encoder.layer.1.output.dense.bias"],
                       net.encoder.layer[1].output.dense.bias[:128])


def test_observe_sees_sub_model_positions():
    """``observe`` is called with the sub-model's layer index, whatever layer it runs."""
    torch.manual_seed(0)
    net = SuperPLM(FOUR_LAYERS, depth="spread").eval()
    ids, mask, types = _padded_batch()
    seen = []
    with torch.no_grad():
        net(ids, mask, types, arch=Arch(2, 128, 128, 1, 64), observe=lambda i, t: seen.append(i))
    assert seen == [-1, 0, 1]
