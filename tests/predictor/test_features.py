import numpy as np
import pytest

from atb.arch import BERT_BASE, archs_to_array, cost_terms
from atb.errors import PredictorError
from atb.predictor.features import FEATURE_NAMES, Normaliser, check_archs, make_features


def test_features_hold_dims_and_log_costs():
    a = archs_to_array([BERT_BASE, "1-128-128-1-64"])
    x = make_features(a)
    assert x.shape == (2, len(FEATURE_NAMES))
    np.testing.assert_array_equal(x[:, :5], a)
    np.testing.assert_allclose(x[:, 5:10], np.log(a))
    c = cost_terms(a)
    col = FEATURE_NAMES.index
    np.testing.assert_allclose(x[:, col("log_total_macs")], np.log(c["total_macs"]))
    np.testing.assert_allclose(x[:, col("log_param_bytes")], np.log(c["param_bytes"]))
    layer = (c["total_macs"] - c["pooler_macs"]) / a[:, 0]
    np.testing.assert_allclose(x[:, col("log_layer_macs")], np.log(layer))


def test_seq_len_changes_attention_features():
    a = archs_to_array([BERT_BASE])
    assert make_features(a, 256)[0, 10] > make_features(a, 128)[0, 10]


def test_single_row_is_accepted():
    assert make_features(np.array([4, 256, 512, 4, 256])).shape == (1, len(FEATURE_NAMES))


@pytest.mark.parametrize("bad", [np.zeros((3, 4)), np.array([[4, 256, 512, 4, 0]]),
                                 np.array([["a"] * 5]), np.array([[4, 256, np.nan, 4, 256]])])
def test_bad_arch_arrays_are_refused(bad):
    with pytest.raises(PredictorError):
        check_archs(bad)


def test_normaliser_survives_constant_columns():
    x = np.array([[1.0, 5.0], [3.0, 5.0]])
    norm = Normaliser.fit(x)
    z = norm(x)
    assert np.isfinite(z).all()
    np.testing.assert_allclose(z[:, 0], [-1, 1])
    again = Normaliser.from_arrays(norm.arrays("p."), "p.")
    np.testing.assert_array_equal(again(x), z)
