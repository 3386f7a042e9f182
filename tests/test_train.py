"""`caser.train.fit`: the process-wide floating-point setting it needs."""
from __future__ import annotations

import torch

from conftest import TINY_DATA
from caser.config import DataConfig, ModelConfig, TrainConfig
from caser.datasets import load_split
from caser.train import fit


def test_fit_flushes_subnormal_floats_to_zero():
    """Weights that only weight decay moves sink into the subnormal range, where the CPU is
    about 100 times slower (the ml-1m-size epoch time nearly doubled after the first epoch)."""
    torch.set_flush_denormal(False)
    subnormal = torch.tensor([1e-40])
    assert (subnormal * 1.0).item() != 0.0
    fit(ModelConfig(d=8, nv=1, nh=2), TrainConfig(epochs=1), load_split(DataConfig(spec=TINY_DATA)))
    assert (subnormal * 1.0).item() == 0.0
