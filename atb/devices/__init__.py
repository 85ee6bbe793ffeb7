"""Where and how a timing is taken: settings, device keys, fingerprints, backends."""

from atb.devices.backends import Backend, Runner, get_backend
from atb.devices.fingerprint import Fingerprint, fingerprint
from atb.devices.quantization import QuantScheme, quantize_with_library, scheme_for
from atb.devices.setting import (
    BACKENDS, PRECISIONS, DeviceSetting, check_flags, device_key_for, device_key_from_flags, key_matching_flags,
    setting_for_key, setting_from_key,
)

__all__ = [
    "Backend", "Runner", "get_backend", "Fingerprint", "fingerprint",
    "BACKENDS", "PRECISIONS", "DeviceSetting", "device_key_for", "setting_from_key",
    "check_flags", "setting_for_key", "device_key_from_flags", "key_matching_flags",
    "QuantScheme", "quantize_with_library", "scheme_for",
]
