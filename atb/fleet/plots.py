"""Latency of the same archs across devices: one figure, archs sorted by one device.

A fleet profiles the same seeded archs on every device key (the stream depends on the seed and
the space only), so their labels line up arch by arch. The figure puts the archs of one key
(``sort_by``) in order of its latency on the x axis and draws every key's latency (or speedup
over BERT-base) for them; where another device ranks archs differently its points leave the
sorted curve. Each key's Kendall τ against ``sort_by``, on the archs both measured, says how
well a ranking carries over. The command line (``atb-plot devices``) lives in
:mod:`atb.fleet.cli`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from atb.errors import UsageError
from atb.profiler.store import LatencyStore
from atb.workspace import Workspace


def _per_arch(labels, speedup: bool) -> dict[str, float]:
    """arch -> median label (an arch timed in several runs has several)."""
    values = labels.speedup if speedup else labels.latency_ms
    by_arch: dict[str, list[float]] = {}
    for arch, value in zip(labels.arch_strings(), values):
        by_arch.setdefault(arch, []).append(float(value))
    return {a: float(np.median(v)) for a, v in by_arch.items() if np.isfinite(np.median(v))}


def device_table(workspace: Workspace | str | Path | None, device_keys: list[str] | None = None,
                 sort_by: str | None = None, speedup: bool = False) -> dict:
    """The archs of ``sort_by`` in order of its label, and every key's label for each.

    Returns ``{"sort_by", "keys", "archs", "values": {key: [value or nan per arch]},
    "shared": {key: n}, "kendall_tau": {key: tau or None}}``.
    """
    from scipy.stats import kendalltau

    ws = Workspace.of(workspace, create=False)
    with LatencyStore.open(ws.store_path, readonly=True) as store:
        keys = list(dict.fromkeys(device_keys)) if device_keys else list(store.device_keys())
        per_key = {k: _per_arch(store.labels(k), speedup) for k in keys}
    if len(keys) < 2:
        raise UsageError(f"a cross-device plot needs labels of two device keys or more; "
                         f"{ws.store_path} has {len(keys)}",
                         hint="profile more devices (atb-fleet profile) or name them with --device-key")
    sort_by = sort_by or keys[0]
    if sort_by not in per_key:
        raise UsageError(f"--sort-by {sort_by} is not one of the plotted keys", hint=f"use one of: {', '.join(keys)}")
    base = per_key[sort_by]
    archs = sorted(base, key=lambda a: (base[a], a))
    values, shared, tau = {}, {}, {}
    for key in keys:
        values[key] = [per_key[key].get(a, float("nan")) for a in archs]
        common = [a for a in archs if a in per_key[key]]
        shared[key] = len(common)
        if key != sort_by and len(common) >= 2:
            value = float(kendalltau([base[a] for a in common], [per_key[key][a] for a in common])[0])
            tau[key] = value if np.isfinite(value) else None
        else:
            tau[key] = None
    if not any(shared[k] for k in keys if k != sort_by):
        raise UsageError(f"no arch of {sort_by} was measured under another of the keys",
                         hint="profile the same archs on each device: atb-fleet profile (same --seed and space)")
    return {"sort_by": sort_by, "keys": keys, "archs": archs, "values": values, "shared": shared,
            "kendall_tau": tau}


def plot_devices(workspace: Workspace | str | Path | None = None, out: str | Path | None = None,
                 device_keys: list[str] | None = None, sort_by: str | None = None,
                 speedup: bool = False) -> dict:
    """Draw :func:`device_table` (PNG; default ``plots/devices[-speedup].png``); returns the
    files written with the table's summary (no per-arch values)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ws = Workspace.of(workspace, create=False)
    table = device_table(ws, device_keys, sort_by, speedup)
    suffix = "-speedup" if speedup else ""
    path = Path(out) if out else ws.plots_dir / f"devices{suffix}.png"
    x = np.arange(len(table["archs"]))
    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=120)
    for key in table["keys"]:
        y = np.asarray(table["values"][key])
        tau = table["kendall_tau"][key]
        shared = f"n={table['shared'][key]}" + (f", τ={tau:.2f}" if tau is not None else "")
        label = key + (" (sorted by)" if key == table["sort_by"] else f" ({shared})")
        if key == table["sort_by"]:
            ax.plot(x, y, color="black", lw=1.2, label=label, zorder=3)
        else:
            ax.scatter(x, y, s=8, alpha=0.7, lw=0, label=label)
    what = "speedup over BERT-base (×)" if speedup else "latency (ms)"
    ax.set(yscale="log", xlabel=f"arch, in order of {'speedup' if speedup else 'latency'} on the sorted-by device",
           ylabel=what, title=f"The same {len(x)} archs across devices")
    ax.grid(True, which="both", lw=0.3, alpha=0.5)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        plt.close(fig)
    return {"files": [str(path)], "quantity": "speedup" if speedup else "latency_ms",
            **{k: table[k] for k in ("sort_by", "keys", "shared", "kendall_tau")}, "archs": len(x)}
