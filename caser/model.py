"""Caser's network (Tang & Wang, WSDM 2018), layer for layer as the original PyTorch code.

Only layers and `forward`: the loss, optimiser and logging live in `caser/module.py`.
    embed the L previous items      E: (B, L, d)
    vertical conv, nv filters L x 1 -> (B, nv * d)           (no activation, as the original)
    horizontal convs, nh filters of every height h = 1..L, ac_conv, max-pool over time
                                    -> (B, nh * L)
    dropout on the concatenation, fc to d with ac_fc -> z: (B, d)
    score of item i = [z, P_u] . W2_i + b2_i
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from caser.config import ModelConfig

ACTIVATION_FUNCTIONS = {
    "iden": lambda x: x,
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigm": torch.sigmoid,
}


class Caser(nn.Module):
    """The Caser network for num_users users and num_items real items (ids 1..num_items; 0 pads)."""

    def __init__(self, num_users: int, num_items: int, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        L, d, nv, nh = config.L, config.d, config.nv, config.nh
        self.ac_conv = ACTIVATION_FUNCTIONS[config.ac_conv]
        self.ac_fc = ACTIVATION_FUNCTIONS[config.ac_fc]
        n_rows = num_items + 1  # row 0 is padding, as the original's embedding tables
        self.user_embeddings = nn.Embedding(num_users, d)
        self.item_embeddings = nn.Embedding(n_rows, d)
        self.conv_v = nn.Conv2d(1, nv, (L, 1)) if nv else None
        self.conv_h = nn.ModuleList([nn.Conv2d(1, nh, (h, d)) for h in range(1, L + 1)] if nh else [])
        self.fc1 = nn.Linear(nv * d + nh * L, d)
        self.W2 = nn.Embedding(n_rows, 2 * d)
        self.b2 = nn.Embedding(n_rows, 1)
        # The original's initialisation: N(0, 1/dim) for the embeddings and W2 (whose dim is 2d
        # there too), zero b2; convs and fc1 keep PyTorch's defaults.
        self.user_embeddings.weight.data.normal_(0, 1.0 / d)
        self.item_embeddings.weight.data.normal_(0, 1.0 / d)
        self.W2.weight.data.normal_(0, 1.0 / (2 * d))
        self.b2.weight.data.zero_()

    def features(self, seqs: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        """(B, 2d): the concatenation [z, P_u] that every item's output weights dot with.

        The convolutions are computed as matrix products on the same Conv2d parameters (the
        filters span the whole embedding width, so a convolution is a linear map of a window),
        several times faster on a CPU than conv2d and its backward. Max-pooling before the
        activation equals the original's activation-then-pool, as every activation here is
        non-decreasing. `features_reference` keeps the literal Conv2d computation for tests.
        """
        E = self.item_embeddings(seqs)  # (B, L, d)
        parts = []
        if self.conv_v is not None:
            w = self.conv_v.weight.view(self.config.nv, self.config.L)  # (nv, L)
            v = torch.einsum("vl,bld->bvd", w, E) + self.conv_v.bias.view(1, -1, 1)
            parts.append(v.flatten(1))  # (B, nv * d)
        for h, conv in enumerate(self.conv_h, start=1):
            windows = E[:, self._window_index(h, E.device)].flatten(2)  # (B, L - h + 1, h * d)
            c = F.linear(windows, conv.weight.flatten(1), conv.bias)  # (B, L - h + 1, nh)
            parts.append(self.ac_conv(c.amax(1)))  # (B, nh)
        return self._head(torch.cat(parts, 1), users)

    def _window_index(self, h: int, device: torch.device) -> torch.Tensor:
        """(L - h + 1, h) positions of every window of height h: row t is t, t+1, ..., t+h-1."""
        n = self.config.L - h + 1
        return (torch.arange(n, device=device)[:, None] + torch.arange(h, device=device)[None, :])

    def features_reference(self, seqs: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        """`features` computed literally as the original: Conv2d, activation, max-pool."""
        E = self.item_embeddings(seqs).unsqueeze(1)  # (B, 1, L, d)
        parts = []
        if self.conv_v is not None:
            parts.append(self.conv_v(E).flatten(1))  # (B, nv * d)
        for conv in self.conv_h:
            c = self.ac_conv(conv(E).squeeze(3))  # (B, nh, L - h + 1)
            parts.append(F.max_pool1d(c, c.size(2)).squeeze(2))  # (B, nh)
        return self._head(torch.cat(parts, 1), users)

    def _dropout(self, x: torch.Tensor) -> torch.Tensor:
        """Inverted dropout, as nn.Dropout, with the mask drawn by torch.rand: on a CPU
        bernoulli_ alone costs more than the rest of the fully connected head."""
        p = self.config.dropout
        if not self.training or p == 0.0:
            return x
        keep = torch.rand_like(x) >= p
        return x * keep * (1.0 / (1.0 - p))

    def _head(self, conv_features: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        z = self.ac_fc(self.fc1(self._dropout(conv_features)))  # (B, d)
        return torch.cat([z, self.user_embeddings(users)], 1)  # (B, 2d)

    def forward(self, seqs: torch.Tensor, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores (B, K) of K candidate items per row: seqs (B, L), users (B,), items (B, K)."""
        x = self.features(seqs, users)
        w2 = self.W2(items)  # (B, K, 2d)
        b2 = self.b2(items).squeeze(2)  # (B, K)
        # Multiply-and-sum rather than the original's baddbmm: the same numbers, and its
        # backward is about twice as fast for K of a few items on a CPU.
        return (w2 * x.unsqueeze(1)).sum(2) + b2

    def score_all(self, seqs: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        """Scores (B, num_items + 1) of every item, for full-ranking evaluation."""
        x = self.features(seqs, users)
        return torch.addmm(self.b2.weight.squeeze(1), x, self.W2.weight.t())
