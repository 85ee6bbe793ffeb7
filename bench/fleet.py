"""atb-fleet: what the driver costs per measurement group, against the group's timing time.

A one-node Ray cluster is started on 127.0.0.1 (the dashboard and usage statistics off; Ray's
loopback-to-LAN swap off, so nothing leaves the loopback interface), this process attached as
the driver, and ``profile_fleet`` times --samples archs on the node. For every committed group
it prints the driver's time (fetching the reply, the one-transaction commit, queueing the next
group) against the group's timing time (every timed run of its archs and of the reference) and
the time the node's actor waited between groups. The cluster is stopped at the end.

    python -m bench.fleet                        # default rule, 80 archs (20 groups), 1 thread
    python -m bench.fleet --samples 200 --threads 2
    python -m bench.fleet --quick                # smoke rule, 8 small archs: checks that it runs

Target (issue 14): driver time per group <= 5% of the group's timing time. Run it on an idle
machine: the node times on this machine, next to the driver.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import parser as bench_parser

# before Ray is imported (in start_cluster): keep every address on 127.0.0.1, report nothing
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
os.environ.pop("RAY_ADDRESS", None)

TARGET = 0.05  # driver time per group / the group's timing time


def start_cluster(cpus: int, env: dict):
    """A head node on 127.0.0.1 offering atb-target, this process attached; returns it."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "node_ip_address": "127.0.0.1", "node_name": "bench", "num_cpus": cpus,
        "resources": {"atb-target": 1}, "include_dashboard": False, "env_vars": env,
        "object_store_memory": 100 * 1024 * 1024,
    })
    ray.init(address=cluster.address, logging_level="WARNING", log_to_driver=False)
    return cluster


def report(result, wall_s: float, smoke: bool) -> None:
    costs = result.stats["per_group"]
    if not costs:
        print("no group was committed")
        return
    driver = np.array([c["driver_s"] for c in costs])
    write = np.array([c["write_s"] for c in costs])
    timed = np.array([c["timed_s"] for c in costs])
    wall = np.array([c["wall_s"] for c in costs])
    ratio = driver / timed
    print(f"\n{len(costs)} groups on {', '.join(n.name + ' ' + str(n.device_key) for n in result.nodes)}")
    print(f"  group timing time   median {1e3 * np.median(timed):8.1f} ms   (the node's wall per group "
          f"{1e3 * np.median(wall):.1f} ms)")
    print(f"  driver per group    median {1e3 * np.median(driver):8.2f} ms   "
          f"p90 {1e3 * np.percentile(driver, 90):.2f} ms   max {1e3 * driver.max():.2f} ms   "
          f"(commit: median {1e3 * np.median(write):.2f} ms)")
    print(f"  driver / timing     median {100 * np.median(ratio):7.2f} %    p90 {100 * np.percentile(ratio, 90):.2f} %"
          f"   max {100 * ratio.max():.2f} %   all groups {100 * driver.sum() / timed.sum():.2f} %")
    idle = result.stats["actor_idle_s"]
    print(f"  node idle between groups {1e3 * idle:.1f} ms in all ({1e3 * idle / max(1, len(costs) - 1):.2f} ms a gap)")
    print(f"  whole call {wall_s:.1f} s for {wall.sum():.1f} s of group work (start, BERT-base at both ends "
          "and the actor's start-up included)")
    if smoke:
        print("  (smoke rule: groups take milliseconds, so the ratio says nothing; run without --quick)")
    else:
        verdict = "meets" if np.median(ratio) <= TARGET and driver.sum() <= TARGET * timed.sum() else "MISSES"
        print(f"  target: driver <= {100 * TARGET:.0f}% of the group's timing time: {verdict}")


def main() -> None:
    p = bench_parser("bench.fleet", __doc__)
    p.add_argument("--samples", type=int, default=80, help="archs to time (groups of 4)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--backend", default="onnxruntime")
    p.add_argument("--super", dest="super_config", default="base")
    p.add_argument("--workspace", default=None, help="default: a fresh temporary directory")
    p.add_argument("--quick", action="store_true", help="smoke rule, 8 small archs: check that it runs")
    args = p.parse_args()

    env = {"ATB_NO_PROGRESS": "1"}
    options = {"samples": args.samples, "threads": args.threads, "backend": args.backend,
               "super_config": args.super_config}
    with tempfile.TemporaryDirectory(prefix="atb-bench-fleet-") as tmp:
        if args.quick:  # its own lock: a smoke check never waits for (or blocks) a real timer
            os.environ["ATB_TIMING_RULE"] = "smoke"
            env.update(ATB_TIMING_RULE="smoke", ATB_LOCK_FILE=str(Path(tmp) / "lock"))
            options.update(samples=8, super_config="small", seq_len=32)
        else:
            os.environ.pop("ATB_TIMING_RULE", None)
        import ray

        from atb.devices import DeviceSetting
        from atb.fleet import profile_fleet
        from atb.fleet.cluster import FleetCluster
        from atb.profiler.api import ProfileConfig

        cluster = start_cluster(os.cpu_count() or 1, env)
        setting = DeviceSetting(backend=options["backend"], threads=options["threads"] or 0,
                                seq_len=options.get("seq_len", 128))
        config = ProfileConfig(setting, samples=options["samples"], super_config=options["super_config"])
        try:
            t0 = time.perf_counter()
            result = profile_fleet(config, args.workspace or Path(tmp) / "ws",
                                   FleetCluster(cluster.address), command="bench.fleet")
            wall_s = time.perf_counter() - t0
        finally:
            ray.shutdown()
            cluster.shutdown()
    for node in result.lost:
        print(f"node {node.name} stopped: {node.error}")
    report(result, wall_s, args.quick)


if __name__ == "__main__":
    main()
