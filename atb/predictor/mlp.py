"""A small feed-forward latency model (HAT-style), fitted with scikit-learn, run in numpy.

Sized for a handful of features: two hidden layers of 32 units. L-BFGS runs to (near)
convergence with a strong L2 penalty (alpha 10, scaled by 1/n in scikit-learn): on labels
with 1-3 % noise this beat stopping early by iteration count, which over-fits as soon as it
runs longer (sweep on synthetic labels; refit the choice on real data if it matters). A ridge-regression skip path
on the same features carries the near-linear trend of log latency in log costs, so the
hidden layers only learn the curvature (smaller net, better extrapolation to the corners of
the space). Prediction is three float32 matrix products per block of rows.
"""

from __future__ import annotations

import numpy as np

from atb.predictor.analytic import AdditiveLayers
from atb.predictor.base import LatencyModel
from atb.predictor.features import Normaliser, make_features

_CHUNK = 65536  # rows per block at predict time; keeps hidden activations in cache


class MLP(LatencyModel):
    kind = "mlp"

    def __init__(self, seq_len: int = 128, hidden: tuple | list = (32, 32), alpha: float = 10.0,
                 max_iter: int = 400, activation: str = "relu"):
        super().__init__(seq_len, {"hidden": list(hidden), "alpha": alpha, "max_iter": max_iter,
                                   "activation": activation})

    def fit(self, archs, log_ms, rng):
        self._fit_net(archs, log_ms, rng)
        return self

    def _fit_net(self, archs, log_ms, rng) -> None:
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPRegressor

        x = make_features(archs, self.seq_len)
        self.norm = Normaliser.fit(x)
        z = self.norm(x)
        # skip path: ridge on the normalised features
        design = np.hstack([z, np.ones((len(z), 1))])
        gram = design.T @ design + 1e-3 * np.eye(design.shape[1])
        self.linear = np.linalg.solve(gram, design.T @ log_ms)
        resid = log_ms - design @ self.linear
        self.y_scale = float(resid.std() or 1.0)
        net = MLPRegressor(
            hidden_layer_sizes=tuple(self.config["hidden"]), activation=self.config["activation"],
            solver="lbfgs", alpha=self.config["alpha"], max_iter=self.config["max_iter"],
            tol=1e-9, random_state=int(rng.integers(2**31 - 1)),
        )
        with warnings.catch_warnings():  # lbfgs stopping at max_iter is the budget, not a fault
            warnings.simplefilter("ignore", ConvergenceWarning)
            net.fit(z, resid / self.y_scale)
        self.weights = [w.astype(np.float32) for w in net.coefs_]
        self.biases = [b.astype(np.float32) for b in net.intercepts_]

    def predict_log(self, archs):
        z = self.norm(make_features(archs, self.seq_len))
        out = z @ self.linear[:-1] + self.linear[-1]
        act = np.tanh if self.config["activation"] == "tanh" else (lambda v: np.maximum(v, 0, out=v))
        for start in range(0, len(z), _CHUNK):
            h = z[start:start + _CHUNK].astype(np.float32)
            for w, b in zip(self.weights[:-1], self.biases[:-1]):
                h = act(h @ w + b)
            h = h @ self.weights[-1] + self.biases[-1]
            out[start:start + _CHUNK] += h[:, 0].astype(np.float64) * self.y_scale
        return out

    def arrays(self):
        out = {"linear": self.linear, "y_scale": np.array(self.y_scale), **self.norm.arrays()}
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            out[f"w{i}"] = w
            out[f"b{i}"] = b
        return out

    def _load_arrays(self, arrays):
        self.norm = Normaliser.from_arrays(arrays)
        self.linear = np.asarray(arrays["linear"], np.float64)
        self.y_scale = float(arrays["y_scale"])
        n = len(self.config["hidden"]) + 1
        self.weights = [np.asarray(arrays[f"w{i}"], np.float32) for i in range(n)]
        self.biases = [np.asarray(arrays[f"b{i}"], np.float32) for i in range(n)]


class HybridMLP(MLP):
    """The additive operator-cost model as a prior, the MLP on its log residuals.

    The additive model gets the bulk right from 11 coefficients and extrapolates sensibly;
    the net only learns what it misses (cache effects, kernel choices), which needs less data
    than learning latency from scratch.
    """

    kind = "hybrid"

    def fit(self, archs, log_ms, rng):
        self.trend = AdditiveLayers(self.seq_len).fit(archs, log_ms, rng)
        self._fit_net(archs, log_ms - self.trend.predict_log(archs), rng)
        return self

    def predict_log(self, archs):
        return self.trend.predict_log(archs) + super().predict_log(archs)

    def arrays(self):
        return {**super().arrays(), "trend.coef": self.trend.coef}

    def _load_arrays(self, arrays):
        super()._load_arrays(arrays)
        self.trend = AdditiveLayers(self.seq_len)
        self.trend._load_arrays({"coef": arrays["trend.coef"]})
