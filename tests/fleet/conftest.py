"""A local two-node Ray cluster on 127.0.0.1 for the fleet tests (started once per module).

Both logical nodes live on this machine, so each gets what a real machine has by itself: its
own host lock file and its own fingerprint (``ATB_FLEET_NODE_TAG`` folds its name into it) --
hence its own device key. Ray swaps a loopback address for the machine's own unless clusters
are off for it (``ENABLE_RAY_CLUSTER``, read from ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER``): off
here, in this process and the cluster's, so every socket stays on 127.0.0.1. Usage statistics
are off; so is the dashboard.
"""

from __future__ import annotations

import pytest

from atb.fleet.node import TAG_ENV

TARGET = "atb-target"
NODES = ("a", "b")


def loopback_only(mp: pytest.MonkeyPatch) -> None:
    """Keep Ray on 127.0.0.1 and quiet, in this process and in what it starts."""
    import ray._private.ray_constants as ray_constants

    mp.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    mp.setenv("RAY_USAGE_STATS_ENABLED", "0")
    mp.delenv("RAY_ADDRESS", raising=False)
    mp.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)


def node_args(name: str, root) -> dict:
    """A target node called ``name``: one CPU, the target resource, its own lock and tag."""
    return {
        "node_ip_address": "127.0.0.1", "node_name": name, "num_cpus": 1, "resources": {TARGET: 1},
        "object_store_memory": 80 * 1024 * 1024,
        "env_vars": {TAG_ENV: name, "ATB_LOCK_FILE": str(root / f"lock-{name}"),
                     "ATB_TIMING_RULE": "smoke", "ATB_NO_PROGRESS": "1"},
    }


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Nodes "a" (the head) and "b", the test process attached as the driver; all stopped after."""
    import ray
    from ray.cluster_utils import Cluster

    root = tmp_path_factory.mktemp("fleet-cluster")
    with pytest.MonkeyPatch.context() as mp:
        loopback_only(mp)
        mp.setenv("ATB_TIMING_RULE", "smoke")
        head = Cluster(initialize_head=True, head_node_args={**node_args("a", root), "include_dashboard": False})
        try:
            head.add_node(**node_args("b", root))
            ray.init(address=head.address, logging_level="WARNING", log_to_driver=False)
            yield head
        finally:
            ray.shutdown()
            head.shutdown()
