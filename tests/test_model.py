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
def test_fast_features_equal_the_literal_convolutions(config):
    torch.manual_seed(0)
    net = Caser(11, 30, config).eval()
    seqs = torch.randint(0, 31, (7, config.L))
    users = torch.randint(0, 11, (7,))
    assert torch.allclose(net.features(seqs, users), net.features_reference(seqs, users), atol=1e-6)


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


def test_initialisation_is_the_originals():
    torch.manual_seed(0)
    net = Caser(300, 2000, ModelConfig(d=50))
    assert net.item_embeddings.weight.std().item() == pytest.approx(1 / 50, rel=0.05)
    assert net.W2.weight.std().item() == pytest.approx(1 / 100, rel=0.05)
    assert net.b2.weight.abs().sum().item() == 0
