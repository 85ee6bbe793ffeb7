"""Fleet: profile every target node of a Ray cluster into one workspace store (Ray optional)."""

from atb.fleet.cluster import DEFAULT_RESOURCE, NAMESPACE
from atb.fleet.driver import FleetReport, GroupEvent, NodeReport, NodeState, actor_name, profile_fleet
from atb.fleet.node import NodeProfiler, RowRecorder, node_fingerprint
from atb.fleet.plots import device_table, plot_devices
from atb.fleet.status import fleet_status
from atb.fleet.writer import StoreWriter

__all__ = [
    "profile_fleet", "fleet_status", "plot_devices", "device_table", "FleetReport", "NodeReport",
    "NodeState", "GroupEvent", "NodeProfiler", "RowRecorder", "StoreWriter", "node_fingerprint",
    "actor_name", "DEFAULT_RESOURCE", "NAMESPACE",
]
