"""One error hierarchy for everything atb raises on purpose.

The CLIs turn an :class:`AtbError` into one line (plus its hint) and exit code 2; library
errors from sqlite3, onnxruntime, openvino or torch are translated at the module boundary
with ``raise AtbSomething(...) from exc`` so that users never see a foreign traceback for a
mistake of theirs.
"""

from __future__ import annotations


class AtbError(Exception):
    """Base class. ``hint`` says what to do about it (shown after the message)."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint

    def one_line(self) -> str:
        text = str(self)
        return f"{text} ({self.hint})" if self.hint else text


class ArchSpecError(AtbError, ValueError):
    """A malformed architecture string or an architecture outside a search space."""


class UsageError(AtbError, ValueError):
    """A bad combination of options or arguments."""


class WorkspaceError(AtbError):
    """The workspace directory cannot be created, read or written."""


class MissingInputError(AtbError):
    """An input another command makes is missing (the hint names that command)."""


class BackendUnavailableError(AtbError):
    """A timing backend is unknown, not installed, or cannot run the requested setting."""


class BackendFailedError(AtbError):
    """The backend failed on the reference model or BERT-base mid-run: the run stops there
    (an arch's own failure is stored with the arch instead, and the run goes on)."""


class NothingMeasuredError(AtbError):
    """Every arch a command was asked to time failed (each is stored with its reason)."""


class StoreError(AtbError):
    """The latency store is unreadable or corrupt."""


class StoreLockedError(AtbError):
    """Another profiler is timing on this host (two timers corrupt each other)."""


class PredictorError(AtbError):
    """A predictor artefact is unreadable or does not fit the data it is asked about."""


class DeviceKeyMismatchError(PredictorError):
    """A predictor is used for a device key it was not fitted on."""


class SupernetError(AtbError):
    """A supernet checkpoint, shard or configuration problem."""


class InfeasibleTargetError(AtbError):
    """A search target lies outside what the search space can reach."""


class EvalError(AtbError, ValueError):
    """A task file, task or model directory that ``atb-eval`` cannot evaluate."""


class FleetError(AtbError):
    """A Ray cluster that ``atb-fleet`` cannot reach or use (Ray missing, a bad address, no
    node offering the target resource)."""
