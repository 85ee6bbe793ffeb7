"""A timing setting and its device key: everything that changes a latency, named.

Every way a command turns flags into a device key, or checks flags against one, is here.
``--backend``/``--threads`` (with ``--precision``/``--seq-len`` where a command has them) always
name a :class:`DeviceSetting`; what a command does with it differs by what the command needs:

* ``atb-profile``, ``atb-fleet profile``: the setting to time. Its key is the one this machine
  (each node) gives it: :meth:`DeviceSetting.resolve`, :meth:`DeviceSetting.key`.
* ``atb-predictor fit/predict/transfer``: the key *this machine* gives the setting
  (:func:`device_key_from_flags`), whether or not the store holds it; a predictor of another
  machine's labels is chosen with ``--device-key``.
* ``atb-search``: a filter on the keys *the store* holds (:func:`key_matching_flags`: backend
  and threads only, any machine), and a check that a named or loaded predictor's key agrees
  (:func:`check_flags`); re-measurement then times under exactly that key
  (:func:`setting_for_key`).

The two meanings of the last two are kept apart on purpose: the predictor's commands refuse an
unknown backend or thread count of this machine before reading a store, and a search over
labels from another machine (a store copied here) picks their key by its setting.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from atb.devices.fingerprint import Fingerprint, fingerprint
from atb.devices.quantization import scheme_for
from atb.errors import BackendUnavailableError, DeviceKeyMismatchError, MissingInputError, UsageError

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

    def check(self) -> "DeviceSetting":
        """Check what needs no machine (names, combinations, ranges); the setting itself.

        The fleet driver checks this once; each node then resolves the setting for itself.
        """
        self._check(None)
        return self

    def resolve(self, fp: Fingerprint | None = None) -> "DeviceSetting":
        """Check the setting against this machine; fill in the default thread count."""
        fp = fp or fingerprint()
        self._check(fp)
        threads = self.threads or fp.physical_cores
        if threads < 1 or threads > fp.logical_cpus:
            raise UsageError(
                f"--threads {self.threads} is outside 1..{fp.logical_cpus} (CPUs available here)"
            )
        return DeviceSetting(self.device, self.backend, threads, self.precision, self.seq_len, self.batch)

    def _check(self, fp: Fingerprint | None) -> None:
        """The checks of :meth:`resolve` but the thread count; those of a CPU only with ``fp``."""
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
            if fp is not None and not fp.has_bf16:
                raise BackendUnavailableError(
                    f"bf16 asked, but this CPU ({fp.cpu_model}) has no bf16 instructions "
                    "(avx512_bf16 / amx_bf16)",
                    hint="use --precision fp32",
                )
        if not 1 <= self.seq_len <= 512:
            raise UsageError(f"--seq-len {self.seq_len} must be within 1..512")
        if self.batch < 1:
            raise UsageError(f"batch {self.batch} must be at least 1")

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
        """The fields (:meth:`from_dict` rebuilds the setting)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "DeviceSetting":
        """The setting of :meth:`to_dict` (or of :meth:`record`: its ``quant_*`` are derived)."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names - {"quant_scheme", "quant_description"}
        if unknown:
            raise ValueError(f"not fields of a DeviceSetting: {', '.join(sorted(unknown))}")
        return cls(**{k: v for k, v in d.items() if k in names})

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


def _setting_text(setting: DeviceSetting) -> str:
    return (f"{setting.backend}, {setting.threads} thread{'s' if setting.threads != 1 else ''}, "
            f"{setting.precision}, {setting.seq_len} tokens")


def check_flags(device_key: str, *, backend: str | None = None, threads: int | None = None,
                precision: str | None = None, seq_len: int | None = None) -> None:
    """Every flag given (``backend``, ``threads``, ``precision``, ``seq_len``; None = not
    given) must name the setting of ``device_key``; with none given the key is not read.

    Re-measurement always times under exactly the predictor's key, so a flag that contradicts
    it is a ``DeviceKeyMismatchError``, not another setting.
    """
    flags = {"backend": backend, "threads": threads, "precision": precision, "seq_len": seq_len}
    given = {name: value for name, value in flags.items() if value is not None}
    if not given:
        return
    setting = setting_from_key(device_key)
    for name, value in given.items():
        if value != getattr(setting, name):
            raise DeviceKeyMismatchError(
                f"--{name.replace('_', '-')} {value} contradicts the predictor's device key {device_key} "
                f"({_setting_text(setting)}); re-measurement uses exactly that key",
                hint="leave the flag out, or choose another setting's predictor with --device-key "
                     "KEY (atb-profile --backend B --threads T makes one)",
            )


def setting_for_key(device_key: str, fp: Fingerprint | None = None,
                    given: DeviceSetting | None = None) -> DeviceSetting:
    """The setting that times under exactly ``device_key`` on this machine.

    ``given`` (a setting asked for, its threads 0 when not named) must be the key's
    (:func:`check_flags`). Raises ``DeviceKeyMismatchError`` when this machine
    (``fp``), or the version of the key's backend library here, gives the same setting another
    key: timings taken here would not be labels of ``device_key``.
    """
    fp = fp or fingerprint()
    if given is not None:
        check_flags(device_key, backend=given.backend, threads=given.threads or None,
                    precision=given.precision, seq_len=given.seq_len)
    here = setting_from_key(device_key).resolve(fp)
    if here.key(fp) != device_key:
        raise DeviceKeyMismatchError(
            f"this machine times the setting of {device_key} under another key, {here.key(fp)} "
            "(another CPU or another version of its backend library)",
            hint="profile and fit a predictor on this machine (atb-profile, atb-predictor fit)",
        )
    return here


def device_key_from_flags(
    device_key: str | None = None,
    backend: str | None = None,
    threads: int | None = None,
    precision: str = "fp32",
    seq_len: int = 128,
) -> str | None:
    """``atb-predictor``'s key: ``--device-key``, or the key this machine gives the setting of
    ``--backend`` (with ``--threads``, ``--precision``, ``--seq-len``), or None (the store's)."""
    if backend and device_key:
        raise UsageError("give either --device-key or --backend/--threads, not both")
    if threads is not None and not backend:
        raise UsageError("--threads needs --backend")
    if backend:
        return device_key_for(backend=backend, threads=threads, precision=precision, seq_len=seq_len)
    return device_key


def key_matching_flags(keys: list[str], backend: str | None, threads: int | None) -> str:
    """``atb-search``'s key: the one of ``keys`` (a store's) whose setting has ``backend`` and
    ``threads`` (as given), whichever machine timed it."""

    def matches(key: str) -> bool:
        try:
            s = setting_from_key(key)
        except UsageError:  # a key atb did not make (e.g. a synthetic one)
            return False
        return backend in (None, s.backend) and threads in (None, s.threads)

    matching = [k for k in keys if matches(k)]
    if len(matching) == 1:
        return matching[0]
    wanted = " and ".join(f"--{n} {v}" for n, v in (("backend", backend), ("threads", threads)) if v is not None)
    if not matching:
        if len(keys) == 1:  # the store's only key is the predictor's: say what contradicts it
            check_flags(keys[0], backend=backend, threads=threads)
        raise MissingInputError(
            f"the latency store holds no device key for {wanted} (it holds: {', '.join(keys) or 'none'})",
            hint="profile that setting first (atb-profile ... --samples N), or choose a key with --device-key",
        )
    raise UsageError(f"{len(matching)} device keys match {wanted}: {', '.join(matching)}",
                     hint="choose one with --device-key")
