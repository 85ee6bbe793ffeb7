import functools

import pytest

from atb.eval import EvalConfig, Probe, TaskFiles, evaluate, load_task, load_tokenizer


@pytest.fixture(scope="module")
def keyword_task(keyword_csv):
    return load_task(keyword_csv)


@pytest.mark.parametrize("model", ["bert_dir", "atb_dir"])
def test_probe_beats_the_majority_and_repeats(model, keyword_task, request):
    result = evaluate(request.getfixturevalue(model), keyword_task, EvalConfig(seeds=[0, 0, 1], threads=1))
    assert result["accuracy"] > result["majority_accuracy"] + 0.15
    first, again, other = result["seeds"]
    assert first == again  # equal seeds, equal results
    without_seed = [{k: v for k, v in r.items() if k != "seed"} for r in (first, other)]
    assert without_seed[0] == without_seed[1]
    assert result["accuracy_std"] == 0.0  # the fit is convex: seeds agree
    assert result["n_train"] == len(keyword_task.train) and result["num_classes"] == 3


def test_probe_of_an_in_memory_encoder_matches_its_directory(atb_dir, keyword_task):
    from atb.modeling import AtbBertModel

    encoder = AtbBertModel.from_pretrained(atb_dir)
    probe = Probe(keyword_task, load_tokenizer())
    in_memory = probe(encoder)
    from_dir = evaluate(atb_dir, keyword_task, EvalConfig(seeds=1))
    assert in_memory["seeds"] == from_dir["seeds"]
    assert not encoder.training  # left as it was found


def test_probe_takes_any_callable_returning_hidden_states(atb_dir, keyword_task):
    from atb.modeling import AtbBertModel

    encoder = AtbBertModel.from_pretrained(atb_dir).eval()
    as_tuple = functools.partial(encoder, return_dict=False)  # (hidden, pooled), like SuperPLM
    probe = Probe(keyword_task, load_tokenizer())
    expected = probe(as_tuple)["seeds"]
    encoder.train()  # a module in training mode is probed with dropout off ...
    assert probe(encoder)["seeds"] == expected
    assert encoder.training  # ... and handed back in training mode


def test_pair_task(tmp_path, bert_dir):
    import json

    from tests.eval.conftest import keyword_rows

    rows = keyword_rows(120, seed=3)
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps({"q": "which group ?", **r}) for r in rows))
    task = load_task(path, TaskFiles(text_column="q", text_pair_column="text"))
    result = evaluate(bert_dir, task, EvalConfig(seeds=1))
    assert result["accuracy"] > result["majority_accuracy"]


def test_probe_of_a_supernet_sub_model(keyword_task):
    """What ``atb-search --fitness probe:TASK`` needs: a sub-model probed without extraction."""
    from atb.arch import Arch, SearchSpace
    from atb.supernet.elastic import SuperPLM

    supernet = SuperPLM(SearchSpace("pretrain", Arch(2, 160, 192, 2, 128))).eval()
    probe = Probe(keyword_task, load_tokenizer())
    for arch in (Arch(2, 128, 192, 2, 128), Arch(1, 64, 100, 1, 64)):
        result = probe(functools.partial(supernet, arch=arch))
        assert result["embedding_dim"] == arch.dm
        assert result["accuracy"] > result["majority_accuracy"]
