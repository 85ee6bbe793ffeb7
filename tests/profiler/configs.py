"""A ``ProfileConfig`` from keywords, as the tests write them (the library takes only the config)."""

from __future__ import annotations

from atb.devices import DeviceSetting
from atb.profiler.api import ProfileConfig

SETTING_FIELDS = ("device", "backend", "threads", "precision", "seq_len")


def profile_config(**kw) -> ProfileConfig:
    """The setting's fields (``backend=``, ``threads=``, ...) go to the ``DeviceSetting``, the
    rest to the config."""
    setting = DeviceSetting(**{name: kw.pop(name) for name in SETTING_FIELDS if name in kw})
    return ProfileConfig(setting, **kw)
