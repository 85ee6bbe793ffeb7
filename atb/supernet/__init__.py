"""SuperPLM: the elastic supernet, extraction, offline data, Algorithm-1 training, fitness.

See docs/supernet.md. Re-exports only; torch is imported when a name is first used, so
``import atb.supernet`` stays cheap for the CLIs.
"""

from __future__ import annotations

from importlib import import_module

_EXPORTS = {
    "prepare_data": "atb.supernet.data",
    "train_supernet": "atb.supernet.train",
    "TrainConfig": "atb.supernet.config",
    "TrainTarget": "atb.supernet.config",
    "FitnessEvaluator": "atb.supernet.heldout_loss",
    "extract": "atb.supernet.extract",  # shadowed by the module once it is imported: import
    # the function from atb.supernet.extract in library code
    "extract_model": "atb.supernet.extract",
    "SuperPLM": "atb.supernet.elastic",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    """Lazy re-export (PEP 562): the module of ``name`` is imported on first use."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'atb.supernet' has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
