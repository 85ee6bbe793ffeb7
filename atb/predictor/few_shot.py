"""Few-shot transfer: a predictor for a new device key from an old one plus a few samples.

The base predictor's chosen model is frozen and a head on its log-residuals is fitted on the
new samples (:class:`~atb.predictor.transfer_head.TransferHead`, which says why that suffices
and how the head is chosen).
"""

from __future__ import annotations

import time

import numpy as np

from atb.errors import PredictorError
from atb.predictor.transfer_head import TransferHead
from atb.predictor.predictor import LatencyPredictor


def transfer(base, new_labels, seed: int = 0):
    """Few-shot predictor for ``new_labels.device_key`` from ``base`` (a LatencyPredictor).

    The base predictor's chosen model is frozen; a head chosen by leave-one-out is fitted on
    the new samples (a few dozen suffice). BERT-base latency comes from the new labels.
    """
    if len(new_labels) < 3:
        raise PredictorError(
            f"transfer needs at least 3 measurements of {new_labels.device_key}, got {len(new_labels)}",
            hint="profile a few dozen architectures on the new setting with atb-profile",
        )
    lat = np.asarray(new_labels.latency_ms, dtype=np.float64)
    if not (np.isfinite(lat).all() and (lat > 0).all()):
        raise PredictorError("transfer labels hold non-positive or non-finite latencies")
    head = TransferHead(seq_len=base.seq_len).fit_head(base.model, new_labels.archs, np.log(lat))
    return LatencyPredictor(
        device_key=new_labels.device_key,
        model=head,
        bert_base_ms=float(new_labels.bert_base_ms),
        protocol_version=int(new_labels.protocol_version),
        space_info=base.space_info,
        seq_len=base.seq_len,
        chosen="transfer",
        models={"transfer": head},
        training={"hash": new_labels.content_hash(), "n": len(new_labels),
                  "n_train": len(new_labels), "n_test": 0, "seed": seed, "source": "transfer"},
        transfer={"base_device_key": base.device_key, "base_chosen": base.chosen,
                  "base_training_hash": base.training.get("hash"), "head": head.config["head"],
                  "lambda": head.config["lam"], "n_samples": len(new_labels)},
        created_at=time.time(),
    )
