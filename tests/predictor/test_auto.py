"""load_or_fit against a real (tiny) latency store: fit when missing, refit when stale."""


import pytest

from atb.errors import MissingInputError
from atb.predictor import load_or_fit
from atb.predictor.fit import FitConfig
from atb.predictor.synthetic import synthetic_labels
from atb.profiler.rows import RunHeader
from atb.profiler.timing import PROTOCOL_VERSION
from atb.workspace import Workspace

from tests.profiler.stores import add_record

KEY = "cpu-test-t1-fp32-s128-b1-00000000"


FAST = FitConfig(kinds=("additive", "flops_linear"), folds=3)


def m(ms, t):
    """Five runs of ``ms`` milliseconds from unix time ``t``."""
    from atb.profiler.timing import Measurement

    return Measurement(tuple([ms / 1e3] * 5), tuple(t + 0.1 * i for i in range(5)), 1)


def _fitted(tmp_path):
    """A workspace whose store holds one run of 60 labels, and the predictor fitted on it."""
    from atb.profiler.store import LatencyStore

    ws = Workspace.resolve(tmp_path / "ws")
    with LatencyStore.open(ws.store_path) as store:
        _fill(store, synthetic_labels(60, seed=2), t0=1000.0)
    return ws, load_or_fit(ws, config=FAST)


def _fill(store, labels, t0):
    rid = store.begin_run(RunHeader(KEY, {}, {}, PROTOCOL_VERSION, {}, "4-512-2048-8-512", "test"))
    add_record(store, rid, KEY, "12-768-3072-12-768", "bert_base", PROTOCOL_VERSION, m(200.0, t0))
    add_record(store, rid, KEY, "4-512-2048-8-512", "reference", PROTOCOL_VERSION, m(30.0, t0 + 1))
    for i, (arch, ms) in enumerate(zip(labels.arch_strings(), labels.latency_ms)):
        add_record(store, rid, KEY, arch, "sampled", PROTOCOL_VERSION, m(float(ms), t0 + 2 + i), space="pretrain")
    add_record(store, rid, KEY, "4-512-2048-8-512", "reference", PROTOCOL_VERSION, m(30.0, t0 + 3 + len(labels)))


def test_fit_when_missing_then_reuse_then_refit_when_stale(tmp_path):
    pytest.importorskip("atb.profiler.store")
    from atb.profiler.store import LatencyStore

    ws = Workspace.resolve(tmp_path / "ws")
    with LatencyStore.open(ws.store_path) as store:
        _fill(store, synthetic_labels(60, seed=2), t0=1000.0)
    messages = []
    fast = FitConfig(kinds=("additive", "flops_linear"), folds=3)
    pred = load_or_fit(ws, log=messages.append, config=fast)
    assert pred.device_key == KEY and any("fitting one" in m for m in messages)
    assert (ws.predictors_dir / f"{KEY}.json").is_file()

    messages.clear()
    again = load_or_fit(ws, log=messages.append, config=fast)
    assert messages == [] and again.training["hash"] == pred.training["hash"]

    with LatencyStore.open(ws.store_path) as store:
        _fill(store, synthetic_labels(20, seed=3), t0=5000.0)
    refreshed = load_or_fit(ws, log=messages.append, config=fast)
    assert any("older than the latency store" in m for m in messages)
    assert refreshed.training["n"] == pred.training["n"] + 20

    messages.clear()
    refreshed.path.with_suffix(".npz").write_bytes(b"damaged")
    rebuilt = load_or_fit(ws, log=messages.append, config=fast)
    assert any("unreadable" in m for m in messages) and rebuilt.training["n"] == refreshed.training["n"]


def test_missing_store_names_the_command(tmp_path):
    with pytest.raises(MissingInputError, match="no latency store") as info:
        load_or_fit(Workspace.resolve(tmp_path / "empty"))
    assert "atb-profile" in info.value.hint


def test_cli_fits_from_the_store_and_predict_refreshes(tmp_path, capsys, caplog):
    pytest.importorskip("atb.profiler.store")
    import json

    from atb.predictor.cli import main
    from atb.profiler.store import LatencyStore

    ws = tmp_path / "ws"
    with LatencyStore.open(Workspace.resolve(ws).store_path) as store:
        _fill(store, synthetic_labels(60, seed=4), t0=1000.0)
    # predict with no predictor yet: fits one and says so (on stderr, even under --json)
    assert main(["predict", "3-256-512-4-256", "--workspace", str(ws), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["device_key"] == KEY and out["predictions"][0]["latency_ms"] > 0
    assert any("fitting one" in r.message for r in caplog.records)
    assert main(["fit", "--workspace", str(ws), "--device-key", KEY, "--models", "additive",
                 "--folds", "3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["chosen"] == "additive"
    assert main(["eval", "--predictor", str(ws / "predictors" / f"{KEY}.json"),
                 "--workspace", str(ws), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 60
    assert main(["fit", "--workspace", str(ws), "--device-key", "nope", "--json"]) == 2


def test_verification_labels_do_not_make_the_predictor_stale(tmp_path):
    from atb.profiler.store import LatencyStore

    ws, pred = _fitted(tmp_path)
    with LatencyStore.open(ws.store_path) as store:  # a search re-measures its top-k
        rid = store.begin_run(RunHeader(KEY, {}, {}, PROTOCOL_VERSION, {}, "4-512-2048-8-512", "verify"))
        add_record(store, rid, KEY, "3-256-1024-4-256", "verify", PROTOCOL_VERSION, m(10.0, 9000.0), space="pretrain")
    messages = []
    again = load_or_fit(ws, log=messages.append, config=FAST)
    assert messages == [] and again.training["hash"] == pred.training["hash"]


def test_a_verification_run_that_moves_the_anchor_re_anchors_the_predictor(tmp_path):
    from atb.profiler.store import LatencyStore

    ws, pred = _fitted(tmp_path)
    with LatencyStore.open(ws.store_path) as store:  # a later run whose BERT-base came out 10% slow, twice
        rid = store.begin_run(RunHeader(KEY, {}, {}, PROTOCOL_VERSION, {}, "4-512-2048-8-512", "verify"))
        add_record(store, rid, KEY, "4-512-2048-8-512", "reference", PROTOCOL_VERSION, m(30.0, 9000))
        for t in (9001, 9002):
            add_record(store, rid, KEY, "12-768-3072-12-768", "bert_base", PROTOCOL_VERSION, m(220.0, t))
        current = store.labels(KEY).bert_base_ms
    messages = []
    moved = load_or_fit(ws, log=messages.append, config=FAST)
    assert current == pytest.approx(220.0) and moved.bert_base_ms == pytest.approx(current)
    assert any("anchor" in msg and "moved" in msg for msg in messages)
    assert moved.training["hash"] == pred.training["hash"]  # not refitted: no training label changed
    messages.clear()
    assert load_or_fit(ws, log=messages.append, config=FAST).bert_base_ms == pytest.approx(current) and messages == []
