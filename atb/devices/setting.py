"""A timing setting and its device key: everything that changes a latency, named."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from atb.devices.fingerprint import Fingerprint, fingerprint
from atb.devices.quantization import scheme_for
from atb.errors import BackendUnavailableError, UsageError

BACKENDS = ("onnxruntime", "openvino", "torch")
PRECISIONS = ("fp32", "bf16", "int8")  # int8: the scheme of atb.devices.quantization
DEVICES = ("cpu",)


@dataclass(frozen=True)
class DeviceSetting:
    """Where and how a timing is taken. Every field is explicit and goes into the key."""

    device: str = "cpu"
    backend: str = "onnxruntime"
    threads: int = 0  # intra-op threads; 0 means "all physical cores", resolved by resolve()
    precision: str = "fp32"
    seq_len: int = 128
    batch: int = 1

    def resolve(self, fp: Fingerprint | None = None) -> "DeviceSetting":
        """Check the setting against this machine; fill in the default thread count."""
        fp = fp or fingerprint()
        if self.device not in DEVICES:
            raise UsageError(f"unknown device {self.device!r}", hint=f"use one of: {', '.join(DEVICES)}")
        if self.backend not in BACKENDS:
            raise BackendUnavailableError(
                f"unknown backend {self.backend!r}", hint=f"use one of: {', '.join(BACKENDS)}"
            )
        if self.precision not in PRECISIONS:
            raise UsageError(f"unknown precision {self.precision!r}", hint=f"use one of: {', '.join(PRECISIONS)}")
        if self.precision == "int8" and self.backend == "torch":
            raise BackendUnavailableError(
                "int8 is timed on an ONNX graph; torch eager has none",
                hint="use --backend onnxruntime (dynamic INT8) or --backend openvino (static QDQ INT8)",
            )
        if self.precision == "bf16":
            if self.backend == "onnxruntime":
                raise BackendUnavailableError(
                    "onnxruntime's CPU provider has no bf16 kernels", hint="use --backend openvino for bf16"
                )
            if not fp.has_bf16:
                raise BackendUnavailableError(
                    f"bf16 asked, but this CPU ({fp.cpu_model}) has no bf16 instructions "
                    "(avx512_bf16 / amx_bf16)",
                    hint="use --precision fp32",
                )
        if not 1 <= self.seq_len <= 512:
            raise UsageError(f"--seq-len {self.seq_len} must be within 1..512")
        if self.batch < 1:
            raise UsageError(f"batch {self.batch} must be at least 1")
        threads = self.threads or fp.physical_cores
        if threads < 1 or threads > fp.logical_cpus:
            raise UsageError(
                f"--threads {self.threads} is outside 1..{fp.logical_cpus} (CPUs available here)"
            )
        return DeviceSetting(self.device, self.backend, threads, self.precision, self.seq_len, self.batch)

    def key(self, fp: Fingerprint | None = None) -> str:
        """Stable device key, e.g. ``cpu-onnxruntime-t2-fp32-s128-b1-1a2b3c4d``."""
        fp = fp or fingerprint()
        if not self.threads:
            raise ValueError("resolve() the setting before asking for its key")
        return (
            f"{self.device}-{self.backend}-t{self.threads}-{self.precision}-"
            f"s{self.seq_len}-b{self.batch}-{fp.hash(self.backend)}"
        )

    @property
    def quant_scheme(self) -> str | None:
        """The INT8 scheme this setting times (``dynamic``, ``qdq``), None unless int8."""
        if self.precision != "int8":
            return None
        return scheme_for(self.backend).name

    def to_dict(self) -> dict:
        """The fields (``DeviceSetting(**d)`` rebuilds the setting)."""
        return asdict(self)

    def record(self) -> dict:
        """What a run stores as its setting: the fields, plus ``quant_scheme`` and its one-line
        description for int8 (the key's ``int8`` names the precision; this says how)."""
        d = self.to_dict()
        if self.precision == "int8":
            scheme = scheme_for(self.backend)
            d["quant_scheme"], d["quant_description"] = scheme.name, scheme.description
        return d


def device_key_for(
    backend: str = "onnxruntime",
    threads: int | None = None,
    precision: str = "fp32",
    seq_len: int = 128,
    batch: int = 1,
    device: str = "cpu",
) -> str:
    """The device key this machine gives to a setting (defaults filled in)."""
    setting = DeviceSetting(device, backend, threads or 0, precision, seq_len, batch).resolve()
    return setting.key()


def setting_from_key(key: str) -> DeviceSetting:
    """The setting a device key names (its machine hash is not checked here)."""
    parts = key.split("-")
    try:
        device, backend, threads, precision, seq, batch, _hash = parts
        if not (threads[0] == "t" and seq[0] == "s" and batch[0] == "b"):
            raise ValueError(key)
        return DeviceSetting(device, backend, int(threads[1:]), precision, int(seq[1:]), int(batch[1:]))
    except (ValueError, IndexError):
        raise UsageError(
            f"malformed device key {key!r}",
            hint="expected cpu-<backend>-t<threads>-<precision>-s<seq>-b<batch>-<hash>",
        ) from None
