"""🤗 loading of a classification head on both kinds of extracted directory, on either pooling."""

import pytest
import torch
from transformers import (
    AutoModelForSequenceClassification,
    BertForSequenceClassification,
)

from atb.errors import UsageError
from atb.eval.models import classifier_pooling, load_classifier
from atb.modeling import AtbBertConfig, AtbBertForSequenceClassification, AtbBertModel, mean_pool


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


@pytest.mark.parametrize("model", ["bert_dir", "atb_dir"])
def test_mean_pooled_head_reads_the_attended_tokens_only(model, request, tmp_path):
    model_dir = request.getfixturevalue(model)
    torch.manual_seed(0)
    clf = load_classifier(model_dir, ["a", "b", "c"]).eval()  # mean is the default for both
    assert type(clf) is AtbBertForSequenceClassification
    assert clf.config.classifier_pooling == "mean" and clf.config.id2label[2] == "c"
    base = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=3).bert
    for name, weight in base.state_dict().items():  # a stock encoder loads in unchanged
        assert torch.equal(clf.bert.state_dict()[name], weight), name
    ids = torch.randint(1, 1000, (1, 6))
    padded = torch.cat([ids, torch.zeros(1, 3, dtype=ids.dtype)], dim=1)
    mask = torch.tensor([[1] * 6 + [0] * 3])
    with torch.no_grad():
        alone, with_padding = clf(ids).logits, clf(padded, attention_mask=mask).logits
        hidden = clf.bert(ids).last_hidden_state
        assert torch.allclose(alone, clf.classifier(hidden.mean(1)), atol=1e-5)
    assert torch.allclose(alone, with_padding, atol=1e-5)
    clf.save_pretrained(tmp_path)  # an atb-bert directory, head and pooling included
    again = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert type(again) is AtbBertForSequenceClassification
    assert again.config.classifier_pooling == "mean"
    with torch.no_grad():
        assert torch.allclose(again(ids).logits, alone, atol=1e-6)


def test_cls_pooling_keeps_the_family_head(bert_dir, atb_dir):
    assert type(load_classifier(bert_dir, ["a", "b"], "cls")) is BertForSequenceClassification
    clf = load_classifier(atb_dir, ["a", "b"], "cls")
    assert clf.config.classifier_pooling == "cls"


def test_pooling_choice_by_model_family():
    assert classifier_pooling("bert", None) == classifier_pooling("atb-bert", None) == "mean"
    assert classifier_pooling("roberta", None) == "cls"  # its own head: no atb-bert to hold it
    with pytest.raises(UsageError, match="needs a bert or atb-bert"):
        classifier_pooling("roberta", "mean")
    with pytest.raises(UsageError, match="unknown pooling"):
        classifier_pooling("bert", "max")


def test_config_from_a_stock_bert_config():
    bert = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
            "intermediate_size": 64, "hidden_act": "gelu", "position_embedding_type": "absolute"}
    config = AtbBertConfig.from_bert(bert, classifier_pooling="mean")
    assert config.qkv_size == config.hidden_size == 32 and config.classifier_pooling == "mean"
    for unsupported in ({"position_embedding_type": "relative_key"}, {"hidden_act": "relu"}):
        with pytest.raises(ValueError):
            AtbBertConfig.from_bert({**bert, **unsupported})
    with pytest.raises(ValueError, match="classifier_pooling"):
        AtbBertConfig(classifier_pooling="max")


def test_mean_pool_of_a_fully_masked_row_is_zero():
    hidden = torch.ones(2, 3, 4)
    pooled = mean_pool(hidden, torch.tensor([[1, 1, 0], [0, 0, 0]]))
    assert torch.equal(pooled[0], torch.ones(4)) and torch.equal(pooled[1], torch.zeros(4))
