"""How far a run's labels can be trusted: sentinel archs re-timed, and what the run could see.

Every profiling run of at least :data:`MIN_ARCHS_FOR_SENTINELS` archs re-times a few
*sentinels* (role ``sentinel``): archs of the same device key first timed in an *earlier* run,
so that their difference includes everything that changes between processes, or, on a key's
first run, archs timed earlier in the same run (a figure within one process only, and the run
says so). A sentinel's relative speedup difference from the arch's first label is one sample of
the label noise; :func:`repeatability` summarises them (median and 90th percentile of the
absolute difference). Sentinel rows are never training labels.

Everything is derived from the stored measurements on read, like the drift correction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SENTINEL_ROLE = "sentinel"
MIN_ARCHS_FOR_SENTINELS = 50  # smaller runs would spend over 5% of their time on sentinels
MAX_SENTINELS = 12  # three groups: 4% of a 300-arch run, less of a larger one
NOISE_WARNING = 0.03  # a median speedup difference above this is worth a line
NOISY_SHARE_ADVICE = 0.5  # above this share of noisy labels a run suggests fewer threads
BETWEEN = "between processes"
WITHIN = "within one process"


def sentinel_count(archs_in_run: int) -> int:
    """Sentinels a run of ``archs_in_run`` archs re-times (≤ 5% of its time; at least 2 or none)."""
    n = min(MAX_SENTINELS, archs_in_run // 25)
    return n if archs_in_run >= MIN_ARCHS_FOR_SENTINELS and n >= 2 else 0


@dataclass(frozen=True)
class Repeatability:
    """The label noise sentinels imply: |speedup of the re-timing / first label − 1|."""

    median: float
    p90: float
    n: int
    scope: str  # BETWEEN or WITHIN

    @property
    def noisy(self) -> bool:
        return self.median > NOISE_WARNING

    def to_dict(self) -> dict:
        return {"median": self.median, "p90": self.p90, "n": self.n, "scope": self.scope}

    def describe(self) -> str:
        return (f"{100 * self.median:.1f}% median, {100 * self.p90:.1f}% p90 speedup difference over "
                f"{self.n} re-timed archs ({self.scope})")


def mape_floor(noise_median: float) -> float:
    """The MAPE a perfect predictor would still score against labels of this noise: with
    Gaussian label errors of σ, two labels differ by a median of 0.954 σ and one label is off by
    a mean of 0.798 σ, so the floor is about 0.84 × the median sentinel difference."""
    return 0.798 / 0.954 * noise_median


def sentinel_differences(rows: list[dict], run_id: int | None = None) -> list[tuple[str, float, str]]:
    """(arch, relative speedup difference, scope) of each sentinel row (of ``run_id`` only,
    when given) against the arch's first label among ``rows`` (corrected rows of one protocol)."""
    first: dict[str, dict] = {}
    for r in sorted((r for r in rows if r["role"] != SENTINEL_ROLE), key=lambda r: (r["run_id"], r["measured_at"])):
        first.setdefault(r["arch"], r)
    out = []
    for r in rows:
        if r["role"] != SENTINEL_ROLE or (run_id is not None and r["run_id"] != run_id):
            continue
        label = first.get(r["arch"])
        if label is None or not (np.isfinite(label["speedup"]) and np.isfinite(r["speedup"])):
            continue
        scope = WITHIN if label["run_id"] == r["run_id"] else BETWEEN
        out.append((r["arch"], r["speedup"] / label["speedup"] - 1.0, scope))
    return out


def repeatability(rows: list[dict], run_id: int | None = None) -> Repeatability | None:
    """The noise the sentinels of ``run_id`` (or of every run) imply; between-process pairs
    when there are any (they are the honest figure), else within-process ones; None without."""
    diffs = sentinel_differences(rows, run_id)
    between = [d for _, d, scope in diffs if scope == BETWEEN]
    chosen, scope = (between, BETWEEN) if between else ([d for _, d, _ in diffs], WITHIN)
    if not chosen:
        return None
    size = np.abs(np.asarray(chosen))
    return Repeatability(float(np.median(size)), float(np.percentile(size, 90)), len(size), scope)


def noise_causes(threads: int, cores: int | None, steal_share: float | None, noisy_share: float) -> list[str]:
    """What the run could see that makes labels noisy (for the warning line)."""
    causes = []
    if threads > 1 and cores is not None and threads >= cores:
        causes.append(f"{threads} threads on {cores} cores (the timed threads share them with the OS and "
                      "the hypervisor)")
    if steal_share is not None and steal_share > 0.01:
        causes.append(f"{100 * steal_share:.1f}% of CPU time stolen by the hypervisor")
    if noisy_share > 0.5:
        causes.append(f"bimodal or wide run times ({noisy_share:.0%} of labels with IQR above 5% of the median)")
    return causes


def noise_warning(rep: Repeatability | None, threads: int, cores: int | None, steal_share: float | None,
                  noisy_share: float) -> str | None:
    """One line when the measured label noise exceeds :data:`NOISE_WARNING`, else None."""
    if rep is None or not rep.noisy:
        return None
    causes = noise_causes(threads, cores, steal_share, noisy_share)
    cause = "; ".join(causes) if causes else "no cause visible from inside the run (another load on the host?)"
    advice = "try --threads 1 or an idle, dedicated host" if threads > 1 else "try an idle, dedicated host"
    return (f"warning: labels repeat to {100 * rep.median:.1f}% only ({rep.describe()}): {cause}; {advice}")


def read_steal() -> tuple[int, int] | None:
    """(steal, total) jiffies of all CPUs since boot, from /proc/stat (None where there is none)."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu" or len(fields) < 9:
        return None
    values = [int(v) for v in fields[1:]]
    return values[7], sum(values[:8])  # user nice system idle iowait irq softirq steal


def steal_share(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """Share of CPU time the hypervisor stole between two :func:`read_steal` readings."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


def report_warning(report) -> str | None:
    """The line a profiling run's caller (``atb-profile``, ``atb-demo``) prints about its
    labels: the warning when its sentinels (or the key's) repeat worse than
    :data:`NOISE_WARNING`, else the advice when most labels came out noisy with several
    threads, else None. ``report``: an :class:`atb.profiler.api.ProfileReport`."""
    import os

    from atb.devices.setting import setting_from_key

    threads = setting_from_key(report.device_key).threads
    measured = report.repeatability or report.key_repeatability
    if measured and (warning := noise_warning(Repeatability(**measured), threads, os.cpu_count(),
                                              report.stats.get("steal_share"),
                                              report.noisy_share)):
        return warning
    return noise_advice(threads, report.noisy_share)


def noise_advice(threads: int, noisy_share: float) -> str | None:
    """A hint when most labels came out noisy with several threads.

    On shared and virtual machines a multi-threaded run waits for its slowest thread, and a
    vCPU the hypervisor takes away for a moment makes run times bimodal; one thread is then
    usually several times more repeatable (docs/protocol.md, "Noise").
    """
    if threads <= 1 or noisy_share <= NOISY_SHARE_ADVICE:
        return None
    return (f"note: {noisy_share:.0%} of the labels are noisy (IQR above 5% of the median) at "
            f"{threads} threads; on a shared or virtual machine --threads 1 is usually far more "
            "repeatable")
