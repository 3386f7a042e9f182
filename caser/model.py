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

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from caser.config import ModelConfig

DROPOUT_STREAM = 1  # the dropout masks' stream of (seed, epoch); the negatives draw from (seed, epoch) itself
MASK_LEVELS = 2**16  # a dropout mask element is 16 random bits

ACTIVATION_FUNCTIONS = {
    "iden": lambda x: x,
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigm": torch.sigmoid,
}


def lookup(table: nn.Embedding, ids: torch.Tensor) -> torch.Tensor:
    """table(ids) through index_select, whose backward (index_add) is faster on a CPU than
    the embedding's own."""
    rows = torch.index_select(table.weight, 0, ids.reshape(-1))
    return rows.view(*ids.shape, table.embedding_dim)


class Caser(nn.Module):
    """The Caser network for num_users users and num_items real items (ids 1..num_items; 0 pads)."""

    # The horizontal convolutions run as one dense product up to this many matrix entries;
    # beyond it, one product per height is faster (the timings: docs/measurements.md).
    DENSE_MAX_ENTRIES = 1_000_000

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
        # The original's per-item output weights W2 (2d) and bias b2, side by side in one table,
        # row i = [W2_i, b2_i]: one lookup and one gradient scatter instead of two, for the same
        # parameters and the same (elementwise) Adam update.
        self.output = nn.Embedding(n_rows, 2 * d + 1)
        # The original's initialisation: N(0, 1/dim) for the embeddings and W2 (whose dim is 2d
        # there too), zero b2; convs and fc1 keep PyTorch's defaults.
        self.user_embeddings.weight.data.normal_(0, 1.0 / d)
        self.item_embeddings.weight.data.normal_(0, 1.0 / d)
        self.W2.data.normal_(0, 1.0 / (2 * d))
        self.b2.data.zero_()
        self.seed_dropout(0)  # a training reseeds it every epoch (seed_dropout)
        self.dense_horizontal = bool(nh) and L * d * nh * L * (L + 1) // 2 <= self.DENSE_MAX_ENTRIES
        if self.dense_horizontal:
            self._build_dense_layout()
        else:  # for each height h, the positions t + k of its windows' rows, window by window
            positions = [(torch.arange(L - h + 1)[:, None] + torch.arange(h)).flatten() for h in range(1, L + 1)]
            self._window_slices = np.cumsum([0] + [len(p) for p in positions]).tolist()
            self.register_buffer("_window_positions", torch.cat(positions), persistent=False)

    @property
    def W2(self) -> torch.Tensor:
        """(num_items + 1, 2d) output weights of every item, a view into `output`."""
        return self.output.weight[:, :-1]

    @property
    def b2(self) -> torch.Tensor:
        """(num_items + 1,) output bias of every item, a view into `output`."""
        return self.output.weight[:, -1]

    def features(self, seqs: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        """(B, 2d): the concatenation [z, P_u] that every item's output weights dot with.

        The convolutions are computed as matrix products on the same Conv2d parameters (the
        filters span the whole embedding width, so a convolution is a linear map of a window),
        several times faster on a CPU than conv2d and its backward. Max-pooling before the
        activation equals the original's activation-then-pool, as every activation here is
        non-decreasing; the bias, the same at every position, is added after the pool too. The
        pool is `max(1).values`, whose backward, like max_pool1d's, sends the gradient to one
        position (amax's would split ties) in fewer operations. `features_reference` keeps the
        literal Conv2d computation for tests.
        """
        E = lookup(self.item_embeddings, seqs)  # (B, L, d)
        parts = []
        if self.conv_v is not None:
            w = self.conv_v.weight.view(self.config.nv, self.config.L)  # (nv, L)
            v = torch.einsum("vl,bld->bvd", w, E) + self.conv_v.bias.view(1, -1, 1)
            parts.append(v.flatten(1))  # (B, nv * d)
        if self.conv_h:
            pooled = self._horizontal_dense(E) if self.dense_horizontal else self._horizontal_gathered(E)
            parts.append(self.ac_conv(pooled + self._horizontal_bias()))  # (B, nh * L)
        return self._head(torch.cat(parts, 1), users)

    def _horizontal_bias(self) -> torch.Tensor:
        return torch.cat([conv.bias for conv in self.conv_h])

    def _horizontal_gathered(self, E: torch.Tensor) -> torch.Tensor:
        """(B, nh * L) max over time of every horizontal filter, one product per height h over
        the windows gathered by index_select, whose backward (an index_add) is about 30% faster
        on a CPU than unfold's at L=10, d=128, nh=26 (docs/measurements.md)."""
        B, L, d = E.shape
        pooled = []
        for h, conv in enumerate(self.conv_h, start=1):
            start, stop = self._window_slices[h - 1], self._window_slices[h]
            positions = self._window_positions[start:stop]  # (L - h + 1) * h entries: t + k
            windows = E.index_select(1, positions).view(B, L - h + 1, h * d)  # [t, k * d + j] = E[t + k, j]
            pooled.append(F.linear(windows, conv.weight.flatten(1)).max(1).values)  # (B, nh)
        return torch.cat(pooled, 1)

    def _horizontal_dense(self, E: torch.Tensor) -> torch.Tensor:
        """(B, nh * L) as `_horizontal_gathered`, every filter at every position in ONE product.

        The filters are laid out as a (L * d, sum over h of nh * (L - h + 1)) matrix whose
        column (h, t, f) holds filter f of height h at rows t * d .. (t + h) * d, zero elsewhere.
        One large product beats L small ones while the matrix is small (`DENSE_MAX_ENTRIES`).
        """
        weights = torch.cat([conv.weight.flatten() for conv in self.conv_h])
        matrix = weights.new_zeros(self._dense_shape.numel())
        matrix = matrix.index_put((self._dense_position,), weights.index_select(0, self._dense_source))
        out = E.flatten(1) @ matrix.view(self._dense_shape)  # (B, columns)
        nh, L = self.config.nh, self.config.L
        pooled, start = [], 0
        for h in range(1, L + 1):
            n = L - h + 1
            pooled.append(out[:, start : start + n * nh].view(-1, n, nh).max(1).values)
            start += n * nh
        return torch.cat(pooled, 1)

    def _build_dense_layout(self) -> None:
        """Where each horizontal filter weight goes in `_horizontal_dense`'s matrix: flat
        positions in the matrix and, for each, its index in the concatenated flat weights."""
        L, d, nh = self.config.L, self.config.d, self.config.nh
        positions, sources, column, offset = [], [], 0, 0
        for h in range(1, L + 1):
            n = L - h + 1
            t, f, k, j = np.meshgrid(np.arange(n), np.arange(nh), np.arange(h), np.arange(d), indexing="ij")
            rows, cols = (t + k) * d + j, column + t * nh + f
            positions.append((rows, cols))
            sources.append(offset + (f * h + k) * d + j)  # Conv2d weight (nh, 1, h, d), flattened
            column, offset = column + n * nh, offset + nh * h * d
        self._dense_shape = torch.Size((L * d, column))
        flat = np.concatenate([(r * column + c).ravel() for r, c in positions])
        self.register_buffer("_dense_position", torch.from_numpy(flat), persistent=False)
        self.register_buffer("_dense_source", torch.from_numpy(np.concatenate([s.ravel() for s in sources])),
                             persistent=False)

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

    def seed_dropout(self, *seed: int) -> None:
        """Draw the dropout masks from a generator seeded by `seed` (the training's seed and the
        epoch: `CaserModule` reseeds it every epoch, so a resumed epoch draws the same masks)."""
        self._dropout_bits = np.random.default_rng([*seed, DROPOUT_STREAM]).bit_generator

    def _dropout(self, x: torch.Tensor) -> torch.Tensor:
        """Inverted dropout, as nn.Dropout, its mask drawn 16 random bits an element from numpy's
        PCG64: on a CPU torch's generator takes about 4 ns a number, several times the cost of
        the rest of the fully connected head, and more than a quarter of a step for a wide
        vertical branch (nv * d features). p is taken to 1/65536 (its rounding moves it by less
        than 8e-6), and the kept values are scaled by the taken p's 1 / (1 - p)."""
        p = self.config.dropout
        if not self.training or p == 0.0:
            return x
        if x.device.type != "cpu":  # a GPU's own generator is fast: draw the mask there
            return x * torch.rand_like(x).ge_(p).mul_(1.0 / (1.0 - p))
        dropped = round(p * MASK_LEVELS)
        n = x.numel()
        bits = self._dropout_bits.random_raw(-(-n // 4)).view(np.uint16)[:n].reshape(x.shape)
        mask = (bits >= dropped).astype(np.float32)
        mask *= np.float32(MASK_LEVELS / (MASK_LEVELS - dropped))
        return x * torch.from_numpy(mask)

    def _head(self, conv_features: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        z = self.ac_fc(self.fc1(self._dropout(conv_features)))  # (B, d)
        return torch.cat([z, lookup(self.user_embeddings, users)], 1)  # (B, 2d)

    def forward(self, seqs: torch.Tensor, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores (B, K) of K candidate items per row: seqs (B, L), users (B,), items (B, K)."""
        x = self.user_vectors(seqs, users)  # [z, P_u, 1]: (B, 2d + 1)
        # [W2_i, b2_i] . [z, P_u, 1] by multiply-and-sum rather than the original's baddbmm:
        # the same numbers, and its backward is faster for a few items on a CPU.
        return (lookup(self.output, items) * x.unsqueeze(1)).sum(2)

    def user_vectors(self, seqs: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        """(B, 2d + 1): [z, P_u, 1], what every item's output row [W2_i, b2_i] dots with."""
        return F.pad(self.features(seqs, users), (0, 1), value=1.0)

    def score_items(self, vectors: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """Scores (B, num_items + 1) of every item for `user_vectors` (B, 2d + 1), into `out`
        if given (a buffer reused across batches spares the allocator fresh pages each time).

        One product with the output table as it is stored, [W2, b2]: the bias rides in the
        product, and W2 alone is a strided view that the product would first copy. About 1.4x
        faster on a CPU than addmm(b2, x, W2^T) (docs/measurements.md).
        """
        table = self.output.weight.t()
        return vectors @ table if out is None else torch.mm(vectors, table, out=out)

    def score_all(self, seqs: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        """Scores (B, num_items + 1) of every item, for full-ranking evaluation."""
        return self.score_items(self.user_vectors(seqs, users))
