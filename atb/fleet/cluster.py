"""The Ray side of a fleet: importing Ray, reaching a cluster, finding its target nodes.

Ray is an optional extra (``pip install 'atb[fleet]'``) and is imported here only, and only
when a fleet command runs. The driver must run on a node of the cluster (Ray connects a driver
through its local node); ``ray://`` (Ray Client) addresses are refused.

An address is checked before Ray sees it: Ray retries an unreachable cluster for minutes, so a
plain TCP connection to the address Ray would use tells the user at once. Ray puts a node's
own address in place of a loopback one unless it runs with clusters off
(``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, what the tests and the benchmark do to stay on
127.0.0.1); the check follows the same rule because it asks Ray for that address.
"""

from __future__ import annotations

import logging
import socket
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from atb.errors import FleetError

INSTALL_HINT = "pip install 'atb[fleet]'"
DEFAULT_RESOURCE = "atb-target"  # the custom resource a target node offers (ray start --resources)
NAMESPACE = "atb-fleet"  # the Ray namespace of the profiling actors
CONNECT_TIMEOUT_S = 5.0
START_TIMEOUT_S = 120.0  # a node whose profiler is not running by then is reported, not waited for


@dataclass(frozen=True)
class FleetCluster:
    """Which Ray cluster a fleet call reaches, and which of its nodes it times on."""

    address: str | None = None  # the head's HOST:PORT or "auto"; None: an attached process's
    resource: str = DEFAULT_RESOURCE  # the custom resource that marks a target node
    start_timeout_s: float = START_TIMEOUT_S  # how long a node's profiler may take to start


def import_ray():
    """The ``ray`` module, or a one-line :class:`FleetError` naming the extra to install."""
    try:
        import ray
    except ImportError as exc:
        raise FleetError("Ray is not installed (atb-fleet runs on a Ray cluster)",
                         hint=f"install it with: {INSTALL_HINT}") from exc
    return ray


@dataclass(frozen=True)
class TargetNode:
    """A node of the cluster that offers the target resource."""

    node_id: str
    name: str  # Ray's node name (ray start --node-name; its IP by default)
    hostname: str
    ip: str
    cpus: float  # the node's CPU resource: the profiler reserves them all

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _split_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    host = host.strip("[]")  # [::1]:6379
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise FleetError(f"malformed Ray address {address!r}",
                         hint="give HOST:PORT as ray start --head prints it, or auto")
    return host, int(port)


def check_address(address: str | None) -> None:
    """Refuse at once an address Ray cannot use: missing, malformed, Ray Client, or nothing
    listening where Ray would connect."""
    if not address:
        raise FleetError("no Ray cluster address given",
                         hint="pass --address HOST:PORT of the head node, or set RAY_ADDRESS")
    if address.startswith("ray://"):
        raise FleetError(f"Ray Client addresses are not supported ({address})",
                         hint="run atb-fleet on a node of the cluster with --address HOST:PORT")
    if address != "auto":
        _split_address(address)
    import_ray()
    try:  # the address Ray will dial: 'auto' resolved, loopback swapped as Ray swaps it
        from ray._private.services import canonicalize_bootstrap_address_or_die

        target = canonicalize_bootstrap_address_or_die(address)
    except ImportError:  # another Ray layout: dial what was given
        target = address
    except (ConnectionError, ValueError) as exc:
        raise FleetError(f"no Ray cluster found for {address!r}: {_first_line(exc)}",
                         hint="start one with ray start --head (docs/fleet.md, 'Commands')") from exc
    host, port = _split_address(target)
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise FleetError(f"cannot reach a Ray cluster at {address}: {exc.strerror or exc}",
                         hint="start the head with ray start --head and pass the address it prints") from exc


@contextmanager
def connected(address: str | None) -> Iterator:
    """``with connected(address) as ray:`` the driver attached to the cluster.

    When this process is already attached (``ray.init`` was called, as in a notebook or a
    test), that connection is used as it is and left open; otherwise the address is checked,
    joined, and left at the end.
    """
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    check_address(address)
    try:
        ray.init(address=address, namespace=NAMESPACE, logging_level=logging.WARNING,
                 log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise FleetError(f"cannot join the Ray cluster at {address}: {_first_line(exc)}",
                         hint="run atb-fleet on a node of the cluster (ray start --address ...)") from exc
    try:
        yield ray
    finally:
        ray.shutdown()


def target_nodes(ray, resource: str) -> list[TargetNode]:
    """The alive nodes offering at least one unit of ``resource``, in a stable order."""
    found = []
    for node in ray.nodes():
        if not node.get("Alive") or node.get("Resources", {}).get(resource, 0) < 1:
            continue
        found.append(TargetNode(
            node_id=node["NodeID"], name=node.get("NodeName") or node["NodeManagerAddress"],
            hostname=node.get("NodeManagerHostname", ""), ip=node["NodeManagerAddress"],
            cpus=float(node.get("Resources", {}).get("CPU", 0)),
        ))
    return sorted(found, key=lambda n: (n.name, n.node_id))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
