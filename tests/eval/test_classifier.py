"""🤗 loading of a classification head on both kinds of extracted directory."""

import torch
from transformers import (
    AutoModelForSequenceClassification,
    BertForSequenceClassification,
)

from atb.modeling import AtbBertForSequenceClassification, AtbBertModel


def _loads_with_head(model_dir, expected_class, base_class):
    import atb.modeling  # noqa: F401  (registers atb-bert)

    clf = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=3)
    assert type(clf) is expected_class
    base = base_class.from_pretrained(model_dir)
    for name, weight in base.state_dict().items():  # the encoder's weights, under bert.
        assert torch.equal(clf.bert.state_dict()[name], weight), name
    ids = torch.randint(1, 1000, (4, 7))
    out = clf(input_ids=ids, attention_mask=torch.ones_like(ids), labels=torch.tensor([0, 1, 2, 1]))
    assert out.logits.shape == (4, 3) and out.loss.ndim == 0
    out.loss.backward()
    assert clf.classifier.weight.grad is not None
    return clf


def test_stock_bert_dir(bert_dir):
    from transformers import BertModel

    _loads_with_head(bert_dir, BertForSequenceClassification, BertModel)


def test_atb_bert_dir_with_narrow_qkv(atb_dir, tmp_path):
    clf = _loads_with_head(atb_dir, AtbBertForSequenceClassification, AtbBertModel)
    assert clf.bert.config.qkv_size == 16 != clf.bert.config.hidden_size
    assert clf.bert.encoder.layer[0].attention.self.query.weight.shape == (16, 32)
    clf.save_pretrained(tmp_path)  # a saved classifier loads back whole, head included
    again = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert torch.equal(again.classifier.weight, clf.classifier.weight)


def test_atb_head_without_labels_and_as_tuple(atb_dir):
    clf = AutoModelForSequenceClassification.from_pretrained(atb_dir, num_labels=2).eval()
    ids = torch.randint(1, 1000, (2, 5))
    assert clf(ids).loss is None
    (logits,) = clf(ids, return_dict=False)
    assert logits.shape == (2, 2)
