"""atb-predictor: fit, evaluate and query latency predictors.

    atb-predictor fit [--workspace DIR] [--backend B --threads T | --device-key K] [-o FILE]
    atb-predictor eval --predictor FILE [--workspace DIR | --labels CSV]
    atb-predictor predict ARCH... [--workspace DIR] [--device-key K | --predictor FILE]
    atb-predictor transfer --base FILE [--workspace DIR | --labels CSV] [--device-key K] [-o FILE]

A predictor is a JSON + npz pair in the workspace's predictors/ directory, named after its
device key. ``predict`` fits or refreshes it first when it is missing or older than the store.

fit and eval report two metric families side by side: latency in ms and speedup over
BERT-base (what the search constrains). Labels from another profiling session (BERT-base
latency more than 1 % off the training labels') are flagged: their latency errors include
the drift between sessions, their speedup errors do not. The parity plot is
``atb-plot predictor [--speedup]``, registered here by add_plot_subcommand.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from atb import cli
from atb.errors import UsageError

log = logging.getLogger("atb.predictor.cli")
PROG = "atb-predictor"
MODEL_KINDS = ("flops_linear", "additive", "gbt", "mlp", "hybrid")


def _add_key_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device-key", metavar="K", help="device key of the measurements to use")
    p.add_argument("--backend", help="device key this machine gives a backend (with --threads; "
                                     "atb-search's --backend picks among the store's keys)")
    p.add_argument("--threads", type=cli.positive_int, help="thread count for --backend")
    p.add_argument("--precision", default="fp32", help="precision for --backend (default fp32)")
    p.add_argument("--seq-len", type=int, default=128, help="sequence length for --backend")


def build_parser() -> argparse.ArgumentParser:
    parser = cli.make_parser(PROG, __doc__)
    sub = parser.add_subparsers(dest="command", metavar="{fit,eval,predict,transfer}", required=True)

    p = sub.add_parser("fit", help="fit a predictor on the store's measurements (or a label CSV)")
    cli.add_common(p)
    _add_key_options(p)
    p.add_argument("--labels", metavar="CSV", help="fit on a label CSV instead of the workspace store")
    p.add_argument("-o", "--output", metavar="FILE", help="artefact path (default: workspace predictors/)")
    p.add_argument("--models", default=",".join(MODEL_KINDS),
                   help=f"model kinds to compare (default {','.join(MODEL_KINDS)})")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5)")
    p.add_argument("--test-fraction", type=float, default=0.2, help="held-out share (default 0.2)")
    p.add_argument("--seed", type=cli.seed_int, default=0)
    p.add_argument("--include-verification", action="store_true",
                   help="also train on archs atb-search re-measured (source verify; left out by "
                        "default: they are the independent check near a target)")

    p = sub.add_parser("eval", help="evaluate a predictor on all measurements of its device key")
    cli.add_common(p)
    p.add_argument("--predictor", metavar="FILE", required=True, help="artefact (.json)")
    p.add_argument("--labels", metavar="CSV", help="evaluate on a label CSV instead of the store")
    p.add_argument("--device-key", metavar="K", help="evaluate on another key (needs --allow-other-device)")
    p.add_argument("--allow-other-device", action="store_true", help="use it for another device key")

    p = sub.add_parser("predict", help="predicted latency and speedup of architectures")
    cli.add_common(p)
    _add_key_options(p)
    p.add_argument("archs", nargs="+", metavar="ARCH", help="lt-dm-df-h-dqkv, e.g. 5-564-1054-8-512")
    p.add_argument("--predictor", metavar="FILE", help="artefact to use (default: the workspace's)")
    p.add_argument("--allow-other-device", action="store_true", help="use it for another device key")

    p = sub.add_parser("transfer", help="few-shot predictor for a new device key from an existing one")
    cli.add_common(p)
    _add_key_options(p)
    p.add_argument("--base", metavar="FILE", required=True, help="existing predictor artefact")
    p.add_argument("--labels", metavar="CSV", help="new-key labels from a CSV instead of the store")
    p.add_argument("-n", "--samples", type=int, default=None, help="use only the first N labels")
    p.add_argument("-o", "--output", metavar="FILE", help="artefact path (default: workspace predictors/)")
    return parser


def resolve_device_key(args) -> str | None:
    """--device-key, or the key of --backend/--threads on this machine, or None
    (:func:`atb.devices.device_key_from_flags`; atb-search's flags pick among the store's keys)."""
    from atb.devices import device_key_from_flags

    return device_key_from_flags(args.device_key, args.backend, args.threads, args.precision, args.seq_len)


def _labels(args, device_key: str | None):
    """LabelSet from --labels CSV or the workspace store, plus the store time (or None)."""
    from atb.profiler.labels import LabelSet

    verification = getattr(args, "include_verification", False)  # fit --include-verification
    if getattr(args, "labels", None):
        return LabelSet.from_csv(args.labels, device_key, include_verification=verification), None
    from atb.predictor.auto import open_store
    from atb.profiler.labels import label_sources
    from atb.workspace import Workspace

    with open_store(Workspace.resolve(args.workspace)) as store:
        labels = LabelSet.from_store(store, device_key, include_verification=verification)
        return labels, float(store.last_modified(labels.device_key,
                                                 roles=label_sources(verification)))


def _metric_row(name: str, m: dict) -> dict:
    """One table row: the latency (ms) family, then the speedup family; "-" where a value is
    missing (artefacts written before speedups were scored) or undefined."""
    def cell(key: str, spec: str) -> str:
        v = m.get(key)
        return "-" if v is None or v != v else format(v, spec)

    return {"model": name, "n": m.get("n", "-"), "rmse": cell("rmse_ms", ".3g"),
            "mape": cell("mape", ".2%"), "w5": cell("within_5", ".2%"),
            "w10": cell("within_10", ".2%"), "tau": cell("kendall_tau", ".4f"),
            "s_mape": cell("speedup_mape", ".2%"), "s_w5": cell("speedup_within_5", ".2%"),
            "s_w10": cell("speedup_within_10", ".2%"), "s_tau": cell("speedup_kendall_tau", ".4f")}


# both families side by side, each header naming its family; Spearman ρ is in --json only
_METRIC_COLUMNS = [("model", "model"), ("n", "n"), ("rmse", "RMSE ms"), ("mape", "MAPE ms"),
                   ("w5", "±5% ms"), ("w10", "±10% ms"), ("tau", "τ ms"),
                   ("s_mape", "MAPE speedup"), ("s_w5", "±5% speedup"), ("s_w10", "±10% speedup"),
                   ("s_tau", "τ speedup")]


def _save(pred, args, store_last_modified: float | None) -> Path:
    """Save to -o, or to the workspace's artefact for the predictor's device key."""
    from atb.predictor.auto import predictor_path
    from atb.workspace import Workspace

    pred.store_last_modified = store_last_modified
    out = Path(args.output) if args.output else predictor_path(Workspace.resolve(args.workspace),
                                                               pred.device_key)
    return pred.save(out)


def _check_output(args) -> None:
    """An unwritable -o fails before the fitting, not after it."""
    if args.output:
        try:
            Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from exc


def cmd_fit(args) -> int:
    from atb.predictor.fit import FitConfig, fit_predictor

    kinds = tuple(k.strip() for k in args.models.split(",") if k.strip())
    if set(kinds) - set(MODEL_KINDS) or not kinds:
        raise UsageError(f"--models {args.models!r}: choose from {','.join(MODEL_KINDS)}")
    if args.folds < 2:
        raise UsageError("--folds must be at least 2")
    _check_output(args)
    labels, last = _labels(args, resolve_device_key(args))
    config = FitConfig(kinds=kinds, folds=args.folds, test_fraction=args.test_fraction, seed=args.seed)
    pred = fit_predictor(labels, config, source=args.labels or "store")
    path = _save(pred, args, last)
    noise = None if args.labels else _label_noise(args, labels.device_key)
    if args.json:
        cli.print_json({"path": str(path), **pred.summary(), "label_noise": noise})
        return 0
    rows = [_metric_row(k + (" *" if k == pred.chosen else ""), m) for k, m in pred.cv_scores.items()]
    if rows:
        cli.print_table(rows, _METRIC_COLUMNS, title=f"cross-validation ({pred.training['n_train']} archs)")
    rows = [_metric_row(k, m) for k, m in pred.heldout_metrics.items()]
    if rows:
        print()
        cli.print_table(rows, _METRIC_COLUMNS, title=f"held-out architectures ({pred.training['n_test']})")
    print(f"\nchose {pred.chosen}; wrote {path}")
    if noise:
        print(f"label noise: re-timed archs differ by {100 * noise['median']:.1f}% (median; {noise['n']} "
              f"archs, {noise['scope']}), so a perfect predictor would score a speedup MAPE of about "
              f"{100 * noise['mape_floor']:.1f}% on these labels; {pred.chosen} scores "
              f"{pred.heldout_metrics.get(pred.chosen, {}).get('speedup_mape', float('nan')):.2%} held out")
    return 0


def _label_noise(args, device_key: str) -> dict | None:
    """The store's sentinel figure for ``device_key`` and the MAPE floor it implies."""
    from atb.predictor.auto import open_store
    from atb.profiler.api import label_noise
    from atb.profiler.repeatability import mape_floor
    from atb.workspace import Workspace

    with open_store(Workspace.resolve(args.workspace)) as store:
        rep = label_noise(store, device_key)
    return {**rep.to_dict(), "mape_floor": mape_floor(rep.median)} if rep else None


def cmd_eval(args) -> int:
    from atb.predictor.fit import evaluate_predictor, session_check
    from atb.predictor.predictor import LatencyPredictor

    pred = LatencyPredictor.load(args.predictor)
    key = args.device_key or pred.device_key
    if key != pred.device_key:  # refused here unless --allow-other-device
        pred = LatencyPredictor.load(args.predictor, device_key=key,
                                     allow_other_device=args.allow_other_device)
    labels, _ = _labels(args, key)
    metrics = evaluate_predictor(pred, labels, allow_other_device=True)  # the key was checked above
    session = session_check(pred, labels)
    if args.json:
        cli.print_json({**metrics, **session, "device_key": labels.device_key,
                        "predictor": str(pred.path)})
        return 0
    if labels.device_key != pred.device_key:
        print(f"another device: {session['session_note']}")
    elif not session["same_session"]:
        print(f"another profiling session: {session['session_note']}; latency (ms) "
              "errors include that drift, speedup errors (what the search uses) do not")
    cli.print_table([_metric_row(pred.chosen, metrics)], _METRIC_COLUMNS,
                    title=f"{pred.path} on {labels.device_key}")
    return 0


def cmd_predict(args) -> int:
    import numpy as np

    from atb.arch import Arch, archs_to_array
    from atb.predictor.predictor import LatencyPredictor

    archs = [Arch.parse(a) for a in args.archs]  # ArchSpecError -> one line, exit 2
    key = resolve_device_key(args)
    if args.predictor:
        pred = LatencyPredictor.load(args.predictor, device_key=key,
                                     allow_other_device=args.allow_other_device)
    else:
        from atb.predictor.auto import load_or_fit

        pred = load_or_fit(args.workspace, key, log=lambda msg: log.warning(msg))
    array = archs_to_array(archs)
    ms, speedup = pred.predict_ms(array), pred.predict_speedup(array)
    space = pred.space
    inside = space.contains_array(array) if space is not None else np.ones(len(array), bool)
    for a, ok in zip(archs, inside):
        if not ok:
            log.warning("%s lies outside the %s space the predictor was fitted on; "
                        "its prediction is an extrapolation", a, space.name)
    rows = [{"arch": str(a), "latency_ms": float(m), "speedup": float(s), "in_space": bool(ok)}
            for a, m, s, ok in zip(archs, ms, speedup, inside)]
    if args.json:
        cli.print_json({"device_key": pred.device_key, "predictor": str(pred.path),
                        "bert_base_ms": pred.bert_base_ms, "predictions": rows})
    else:
        cli.print_table([{**r, "latency_ms": f"{r['latency_ms']:.3f}", "speedup": f"{r['speedup']:.2f}x"}
                         for r in rows],
                        [("arch", "arch"), ("latency_ms", "latency ms"), ("speedup", "speedup")],
                        title=f"{pred.device_key} ({pred.chosen})")
    return 0


def cmd_transfer(args) -> int:
    import numpy as np

    from atb.predictor.predictor import LatencyPredictor
    from atb.predictor.few_shot import transfer

    base = LatencyPredictor.load(args.base)
    _check_output(args)
    labels, last = _labels(args, resolve_device_key(args))
    if labels.device_key == base.device_key:
        raise UsageError(f"the labels are for the base predictor's own key {base.device_key}",
                         hint="use atb-predictor fit for that; transfer is for a new key")
    if args.samples is not None:
        if args.samples < 3:
            raise UsageError("--samples must be at least 3")
        labels = labels.subset(np.arange(min(args.samples, len(labels))))
    pred = transfer(base, labels)
    path = _save(pred, args, last)
    if args.json:
        cli.print_json({"path": str(path), **pred.summary()})
    else:
        print(f"transferred {base.device_key} -> {labels.device_key} from {len(labels)} samples "
              f"(head {pred.transfer['head']}); wrote {path}")
    return 0


COMMANDS = {"fit": cmd_fit, "eval": cmd_eval, "predict": cmd_predict, "transfer": cmd_transfer}


def cmd_plot(args) -> dict:
    """Body of ``atb-plot predictor``; returns :func:`~atb.predictor.plots.plot_predictor_parity`'s
    dict (``files``, ``quantity``, ``metrics`` of both families, ...)."""
    from atb.predictor.plots import plot_predictor_parity
    from atb.predictor.predictor import LatencyPredictor
    from atb.workspace import Workspace

    if args.predictor:
        pred = LatencyPredictor.load(args.predictor)
    else:
        from atb.predictor.auto import load_or_fit

        pred = load_or_fit(args.workspace, args.device_key)
    labels = None
    if args.labels:
        from atb.profiler.labels import LabelSet

        labels = LabelSet.from_csv(args.labels, pred.device_key)
    suffix = "-speedup" if args.speedup else ""
    out = Path(args.output) if args.output else (
        Workspace.resolve(args.workspace).plots_dir / f"predictor-{pred.device_key}{suffix}.png")
    return plot_predictor_parity(pred, out, labels, speedup=args.speedup)


def add_plot_subcommand(subparsers) -> None:
    """Register ``atb-plot predictor`` (called by :mod:`atb.plot_cli`)."""
    p = subparsers.add_parser("predictor", help="parity plot of a latency predictor")
    cli.add_common(p)
    p.add_argument("--predictor", metavar="FILE", help="artefact (default: the workspace's)")
    p.add_argument("--device-key", metavar="K", help="which of the workspace's predictors")
    p.add_argument("--labels", metavar="CSV", help="plot against these measurements")
    p.add_argument("--speedup", action="store_true",
                   help="plot speedup over BERT-base instead of latency in ms (free of the drift "
                        "between profiling sessions; what the search constrains)")
    p.add_argument("-o", "--output", metavar="FILE.png",
                   help="output PNG (default: workspace plots/predictor-KEY[-speedup].png)")
    p.set_defaults(func=cmd_plot)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cli.configure(args)
    return cli.run(PROG, lambda: COMMANDS[args.command](args))


if __name__ == "__main__":
    raise SystemExit(main())
