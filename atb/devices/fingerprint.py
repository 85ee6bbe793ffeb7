"""What the machine is: CPU model, ISA flags, cores, OS and library versions.

A fingerprint goes into every device key (as a short hash) so that timings taken on another
CPU, or after a library upgrade, never mix with these.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import metadata

# ISA extensions that change transformer latency on x86 CPUs
ISA_FLAGS = (
    "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
    "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8",
)
BACKEND_LIBRARIES = {"onnxruntime": "onnxruntime", "openvino": "openvino", "torch": "torch"}


@dataclass(frozen=True)
class Fingerprint:
    cpu_model: str
    isa_flags: tuple[str, ...]
    logical_cpus: int  # CPUs this process may run on
    physical_cores: int
    os: str
    python: str
    libraries: dict[str, str] = field(default_factory=dict)

    @property
    def has_bf16(self) -> bool:
        return any(f in self.isa_flags for f in ("avx512_bf16", "amx_bf16"))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["isa_flags"] = list(self.isa_flags)
        return d

    def hash(self, backend: str | None = None) -> str:
        """8 hex digits over the machine facts and the version of ``backend``'s library."""
        facts = {k: v for k, v in self.to_dict().items() if k not in ("libraries", "python")}
        if backend is not None:
            facts["library"] = f"{backend}=={self.libraries.get(backend, 'absent')}"
        text = json.dumps(facts, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:8]


def _cpuinfo() -> tuple[str, set[str], int]:
    model, flags, cores = platform.processor() or platform.machine(), set(), set()
    try:
        with open("/proc/cpuinfo") as f:
            physical = None
            for line in f:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key == "model name":
                    model = value
                elif key == "flags":
                    flags = set(value.split())
                elif key == "physical id":
                    physical = value
                elif key == "core id":
                    cores.add((physical, value))
    except OSError:  # not Linux: fall back to what platform knows
        pass
    return model, flags, len(cores)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


@lru_cache(maxsize=1)
def fingerprint() -> Fingerprint:
    model, flags, physical = _cpuinfo()
    logical = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return Fingerprint(
        cpu_model=model,
        isa_flags=tuple(f for f in ISA_FLAGS if f in flags),
        logical_cpus=logical,
        physical_cores=min(physical or logical, logical),
        os=f"{platform.system()} {platform.release()}",
        python=platform.python_version(),
        libraries={name: _version(pkg) for name, pkg in BACKEND_LIBRARIES.items()},
    )
