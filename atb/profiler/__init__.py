"""Profile: time architectures on this CPU into a crash-safe, drift-corrected store."""

from atb.profiler.api import ProfileConfig, export_csv, profile, profile_archs
from atb.profiler.labels import LabelSet
from atb.profiler.rows import MeasurementRecord, StoreSink
from atb.profiler.session import REFERENCE_ARCH, ArchResult, ProfileReport
from atb.profiler.store import LatencyStore
from atb.profiler.timing import PROTOCOL_VERSION, Measurement, TimingRule

__all__ = [
    "profile", "ProfileConfig", "profile_archs", "export_csv", "LabelSet", "LatencyStore", "ProfileReport",
    "ArchResult", "REFERENCE_ARCH", "PROTOCOL_VERSION", "Measurement", "MeasurementRecord", "StoreSink", "TimingRule",
]
