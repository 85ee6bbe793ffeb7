"""One settings value and the one place flags become (or are checked against) a device key."""

import pytest

from atb.devices import (
    DeviceSetting, check_flags, device_key_for, device_key_from_flags, key_matching_flags, setting_for_key,
)
from atb.errors import BackendUnavailableError, DeviceKeyMismatchError, MissingInputError, UsageError

ORT = "cpu-onnxruntime-t1-fp32-s128-b1-aaaaaaaa"
OV1 = "cpu-openvino-t1-fp32-s128-b1-bbbbbbbb"
OV2 = "cpu-openvino-t2-fp32-s128-b1-bbbbbbbb"


def test_a_setting_round_trips_through_its_dict():
    setting = DeviceSetting(backend="openvino", threads=3, precision="int8", seq_len=64)
    assert DeviceSetting.from_dict(setting.to_dict()) == setting
    assert DeviceSetting.from_dict(setting.record()) == setting  # quant_* are derived, not fields
    with pytest.raises(ValueError, match="threadz"):
        DeviceSetting.from_dict({**setting.to_dict(), "threadz": 2})


def test_check_needs_no_machine_and_leaves_threads_to_it():
    assert DeviceSetting(threads=0).check().threads == 0  # each machine fills it in on resolve()
    for bad, error in ((DeviceSetting(backend="tvm"), BackendUnavailableError),
                       (DeviceSetting(precision="fp8"), UsageError),
                       (DeviceSetting(seq_len=0), UsageError),
                       (DeviceSetting(backend="torch", precision="int8"), BackendUnavailableError)):
        with pytest.raises(error):
            bad.check()


def test_flags_are_checked_against_a_key():
    check_flags(ORT)  # nothing given: the key is not even read
    check_flags("synthetic-cpu", backend=None, threads=None)
    check_flags(ORT, backend="onnxruntime", threads=1)
    with pytest.raises(DeviceKeyMismatchError, match=f"--threads 2 contradicts the predictor's device key {ORT}"):
        check_flags(ORT, threads=2)
    with pytest.raises(DeviceKeyMismatchError, match="--seq-len 64 contradicts"):
        check_flags(ORT, seq_len=64)


def test_setting_for_key_refuses_another_machines_key():
    here = device_key_for(backend="onnxruntime", threads=1)
    assert setting_for_key(here).key() == here
    with pytest.raises(DeviceKeyMismatchError, match="under another key"):
        setting_for_key(here.rsplit("-", 1)[0] + "-deadbeef")


def test_the_predictors_flags_name_this_machines_key():
    assert device_key_from_flags() is None
    assert device_key_from_flags("k") == "k"
    assert device_key_from_flags(backend="onnxruntime", threads=1) == device_key_for("onnxruntime", threads=1)
    with pytest.raises(UsageError, match="not both"):
        device_key_from_flags("k", backend="onnxruntime")
    with pytest.raises(UsageError, match="--threads needs --backend"):
        device_key_from_flags(threads=2)


def test_the_searchs_flags_pick_among_the_stores_keys():
    keys = [ORT, OV1, OV2, "synthetic-cpu"]
    assert key_matching_flags(keys, "onnxruntime", None) == ORT  # another machine's key: still picked
    assert key_matching_flags(keys, "openvino", 2) == OV2
    with pytest.raises(UsageError, match="2 device keys"):
        key_matching_flags(keys, "openvino", None)
    with pytest.raises(MissingInputError, match="--backend torch"):
        key_matching_flags(keys, "torch", None)
    with pytest.raises(DeviceKeyMismatchError, match="--threads 4 contradicts"):
        key_matching_flags([ORT], None, 4)  # the only key: say what contradicts it
