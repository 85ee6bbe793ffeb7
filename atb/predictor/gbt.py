"""Gradient-boosted trees (scikit-learn to fit, numpy to predict).

scikit-learn fits the trees; their arrays (children, split feature, threshold, leaf value)
are copied into padded (n_trees, n_nodes) arrays, and prediction walks all trees at once
with vectorised numpy. So the artefact holds no pickle and survives scikit-learn upgrades
(nn-Meter's pickles did not).
"""

from __future__ import annotations

import numpy as np

from atb.predictor.features import Normaliser, make_features
from atb.predictor.base import LatencyModel

_LEAF = -1  # our marker for "no split here" in the feature array
_CHUNK = 4096  # rows per block: the (rows, trees) index matrix stays in cache-sized memory


class GradientBoostedTrees(LatencyModel):
    kind = "gbt"

    def __init__(self, seq_len: int = 128, n_estimators: int = 200, max_depth: int = 4,
                 learning_rate: float = 0.1, subsample: float = 0.8):
        super().__init__(seq_len, {"n_estimators": n_estimators, "max_depth": max_depth,
                                   "learning_rate": learning_rate, "subsample": subsample})

    def fit(self, archs, log_ms, rng):
        from sklearn.ensemble import GradientBoostingRegressor

        x = make_features(archs, self.seq_len)
        self.norm = Normaliser.fit(x)
        self.offset = float(np.mean(log_ms))
        est = GradientBoostingRegressor(
            loss="squared_error", init="zero", random_state=int(rng.integers(2**31 - 1)),
            **self.config,
        )
        est.fit(self.norm(x), log_ms - self.offset)
        self._from_sklearn(est)
        return self

    def _from_sklearn(self, est) -> None:
        trees = [e.tree_ for e in est.estimators_[:, 0]]
        nodes = max(t.node_count for t in trees)
        shape = (len(trees), nodes)
        self.left = np.zeros(shape, np.int32)
        self.right = np.zeros(shape, np.int32)
        self.feature = np.full(shape, _LEAF, np.int32)
        self.threshold = np.zeros(shape, np.float64)
        self.value = np.zeros(shape, np.float64)
        for i, t in enumerate(trees):
            n = t.node_count
            split = t.children_left >= 0
            self.left[i, :n] = np.where(split, t.children_left, np.arange(n))
            self.right[i, :n] = np.where(split, t.children_right, np.arange(n))
            self.feature[i, :n] = np.where(split, t.feature, _LEAF)
            self.threshold[i, :n] = t.threshold
            # the learning rate is folded into the leaves once, not applied per prediction
            self.value[i, :n] = t.value[:, 0, 0] * est.learning_rate
        self.depth = int(max(t.max_depth for t in trees))

    def predict_log(self, archs):
        x = self.norm(make_features(archs, self.seq_len))
        out = np.empty(len(x))
        trees = np.arange(self.feature.shape[0])
        for start in range(0, len(x), _CHUNK):
            xb = x[start:start + _CHUNK]
            rows = np.arange(len(xb))[:, None]
            node = np.zeros((len(xb), len(trees)), np.int32)
            for _ in range(self.depth):
                feat = self.feature[trees, node]
                go_left = xb[rows, np.maximum(feat, 0)] <= self.threshold[trees, node]
                node = np.where(go_left, self.left[trees, node], self.right[trees, node])
            out[start:start + _CHUNK] = self.value[trees, node].sum(axis=1)
        return out + self.offset

    def arrays(self):
        return {"left": self.left, "right": self.right, "feature": self.feature,
                "threshold": self.threshold, "value": self.value,
                "offset": np.array(self.offset), "depth": np.array(self.depth),
                **self.norm.arrays()}

    def _load_arrays(self, arrays):
        self.left = np.asarray(arrays["left"], np.int32)
        self.right = np.asarray(arrays["right"], np.int32)
        self.feature = np.asarray(arrays["feature"], np.int32)
        self.threshold = np.asarray(arrays["threshold"], np.float64)
        self.value = np.asarray(arrays["value"], np.float64)
        self.offset = float(arrays["offset"])
        self.depth = int(arrays["depth"])
        self.norm = Normaliser.from_arrays(arrays)
