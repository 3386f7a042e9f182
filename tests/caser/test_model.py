"""Caser's network: the fast convolutions equal the literal Conv2d ones; ablations work."""
from __future__ import annotations

import pytest
import torch

from caser.config import ModelConfig
from caser.model import Caser


@pytest.mark.parametrize(
    "config",
    [ModelConfig(), ModelConfig(nv=0), ModelConfig(nh=0), ModelConfig(L=1, ac_conv="sigm"),
     ModelConfig(L=9, nh=3, ac_conv="tanh", ac_fc="iden"), ModelConfig(ac_conv="identity")],
)
@pytest.mark.parametrize("dense", [True, False], ids=["one-product", "per-height"])
def test_fast_features_and_gradients_equal_the_literal_convolutions(config, dense, monkeypatch):
    monkeypatch.setattr(Caser, "DENSE_MAX_ENTRIES", 10**9 if dense else 0)
    torch.manual_seed(0)
    net = Caser(11, 30, config).eval()
    assert net.dense_horizontal == (dense and config.nh > 0)
    seqs = torch.randint(0, 31, (7, config.L))
    users = torch.randint(0, 11, (7,))
    fast, reference = net.features(seqs, users), net.features_reference(seqs, users)
    assert torch.allclose(fast, reference, atol=1e-6)
    weights = [p for p in net.parameters()]
    fast_grads = torch.autograd.grad(fast.square().sum(), weights, allow_unused=True)
    reference_grads = torch.autograd.grad(reference.square().sum(), weights, allow_unused=True)
    for a, b in zip(fast_grads, reference_grads):
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("nv,nh", [(0, 16), (4, 0)])
def test_a_switched_off_branch_trains(nv, nh):
    torch.manual_seed(0)
    net = Caser(5, 20, ModelConfig(nv=nv, nh=nh))
    seqs, users, items = torch.randint(0, 21, (8, 5)), torch.randint(0, 5, (8,)), torch.randint(1, 21, (8, 6))
    net(seqs, users, items).sum().backward()
    assert net.fc1.weight.shape[1] == nv * 50 + nh * 5
    assert net.fc1.weight.grad is not None and net.fc1.weight.grad.abs().sum() > 0


def test_no_features_at_all_is_refused():
    with pytest.raises(ValueError, match="nv = nh = 0"):
        ModelConfig(nv=0, nh=0)


def test_forward_scores_agree_with_full_scores():
    torch.manual_seed(0)
    net = Caser(4, 12, ModelConfig(d=8, L=3)).eval()
    seqs, users = torch.randint(0, 13, (4, 3)), torch.arange(4)
    items = torch.tensor([[1, 5, 12]] * 4)
    assert torch.allclose(net(seqs, users, items), net.score_all(seqs, users)[:, [1, 5, 12]], atol=1e-6)


def test_full_scores_are_the_originals_product_with_its_bias():
    """score_items folds b2 into the product; the numbers are the original's x W2^T + b2,
    written into a reused buffer when one is given."""
    torch.manual_seed(0)
    net = Caser(4, 12, ModelConfig(d=8, L=3)).eval()
    torch.nn.init.normal_(net.output.weight)  # b2 starts at zero, which would hide a lost bias
    seqs, users = torch.randint(0, 13, (4, 3)), torch.arange(4)
    expected = torch.addmm(net.b2, net.features(seqs, users), net.W2.t())
    assert torch.allclose(net.score_all(seqs, users), expected, atol=1e-5)
    buffer = torch.full((6, 13), float("nan"))
    with torch.no_grad():  # as in evaluation: a product written into a buffer has no gradient
        scores = net.score_items(net.user_vectors(seqs, users), out=buffer[:4])
    assert scores.data_ptr() == buffer.data_ptr() and torch.allclose(scores, expected, atol=1e-5)


def test_initialisation_is_the_originals():
    torch.manual_seed(0)
    net = Caser(300, 2000, ModelConfig(d=50))
    assert net.item_embeddings.weight.std().item() == pytest.approx(1 / 50, rel=0.05)
    assert net.W2.std().item() == pytest.approx(1 / 100, rel=0.05)
    assert net.b2.abs().sum().item() == 0
