"""atb-bert in 🤗's Auto classes after a plain ``import atb``, without importing torch then.

🤗's registries (``AutoConfig.register``, ``AutoModel.register``) take class objects, and
atb's model classes import torch and transformers' modeling code (seconds). So that
``import atb`` stays cheap and ``AutoModel.from_pretrained(dir)`` still loads an atb-bert
directory after it, :func:`install` registers with whatever transformers has already loaded
and puts a finder on ``sys.meta_path`` that registers the rest right after transformers
executes the module that defines it: the config class once ``configuration_auto`` is loaded
(cheap: it needs only transformers' config code, loaded by then), the model classes once
``modeling_auto`` is (this imports torch, which an ``AutoModel`` call needs anyway).
Importing :mod:`atb.modeling` registers everything at once.
"""

from __future__ import annotations

import sys
import warnings

CONFIG_AUTO = "transformers.models.auto.configuration_auto"
MODEL_AUTO = "transformers.models.auto.modeling_auto"


def register_config(auto) -> None:
    """Register ``AtbBertConfig`` with ``auto.AutoConfig`` (``auto``: transformers or the
    module of its Auto classes)."""
    from atb.configuration_atb_bert import AtbBertConfig

    auto.AutoConfig.register(AtbBertConfig.model_type, AtbBertConfig, exist_ok=True)


def register_models(auto) -> None:
    """Register the atb-bert models with ``auto.AutoModel`` and
    ``auto.AutoModelForSequenceClassification``."""
    from atb.modeling_atb_bert import AtbBertConfig, AtbBertForSequenceClassification, AtbBertModel

    auto.AutoModel.register(AtbBertConfig, AtbBertModel, exist_ok=True)
    auto.AutoModelForSequenceClassification.register(
        AtbBertConfig, AtbBertForSequenceClassification, exist_ok=True
    )


REGISTRATIONS = {CONFIG_AUTO: register_config, MODEL_AUTO: register_models}


def _register(register, module) -> None:
    try:
        register(module)
    except Exception as exc:  # atb must never break an import of transformers
        warnings.warn(f"atb could not register atb-bert with transformers' Auto classes: {exc!r}",
                      RuntimeWarning, stacklevel=2)


class _RegisterAfterLoad:
    """A loader that executes the module with the real loader, then registers with it."""

    def __init__(self, loader, register, done):
        self._loader, self._register, self._done = loader, register, done

    def __getattr__(self, name):  # get_source, get_filename, is_package...: the real loader's
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        self._loader.exec_module(module)
        _register(self._register, module)
        self._done()


class _AutoModuleWatcher:
    """A ``sys.meta_path`` finder for transformers' Auto modules: it finds them with the
    finders after it and wraps their loader. It removes itself once all are registered."""

    def __init__(self, pending: dict):
        self.pending = pending

    def find_spec(self, name, path, target=None):
        register = self.pending.get(name)
        if register is None:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(name, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec  # not a module we can watch: leave it alone
        spec.loader = _RegisterAfterLoad(spec.loader, register, lambda: self._done(name))
        return spec

    def _done(self, name: str) -> None:
        self.pending.pop(name, None)
        if not self.pending and self in sys.meta_path:
            sys.meta_path.remove(self)


def install() -> None:
    """Register atb-bert with the Auto modules transformers has loaded; watch for the others."""
    pending = {}
    for name, register in REGISTRATIONS.items():
        module = sys.modules.get(name)
        if module is None:
            pending[name] = register
        else:
            _register(register, module)
    if pending and not any(isinstance(f, _AutoModuleWatcher) for f in sys.meta_path):
        sys.meta_path.insert(0, _AutoModuleWatcher(pending))
