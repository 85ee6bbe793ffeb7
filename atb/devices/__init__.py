"""Where and how a timing is taken: settings, device keys, fingerprints, backends."""

from atb.devices.backends import Backend, Runner, get_backend
from atb.devices.fingerprint import Fingerprint, fingerprint
from atb.devices.quantization import QuantScheme, quantize_with_library, scheme_for
from atb.devices.setting import BACKENDS, PRECISIONS, DeviceSetting, device_key_for, setting_from_key

__all__ = [
    "Backend", "Runner", "get_backend", "Fingerprint", "fingerprint",
    "BACKENDS", "PRECISIONS", "DeviceSetting", "device_key_for", "setting_from_key",
    "QuantScheme", "quantize_with_library", "scheme_for",
]
