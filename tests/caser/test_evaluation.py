"""Evaluation in user batches gives the numbers of one big batch and of the per-user reference;
popularity ranks by counts."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from caser.config import DataConfig, ModelConfig
from caser.data_module import PreparedData
from caser.datasets import load_split
from caser.evaluation import batch_metrics, evaluate
from caser.eval_batch import EVAL_BATCH_CELLS, eval_batch_users
from caser.model import Caser
from caser.popularity import popularity_metrics
from caser.reference_metrics import reference_evaluate
from caser.sequences import Sequences
from caser.splits import Split


@pytest.fixture(scope="module")
def data() -> PreparedData:
    return PreparedData(load_split(DataConfig(spec="synthetic:users=80,items=120,interactions=2000")))


@pytest.mark.parametrize("protocol", ["validation", "test"])
def test_user_batches_do_not_change_the_metrics(data, protocol):
    torch.manual_seed(0)
    net = Caser(data.num_users, data.num_items, ModelConfig(d=8)).eval()
    eval_set = data.eval_set(protocol, L=5)
    whole = evaluate(net, eval_set, batch_users=10_000)
    for batch in (1, 7, 33):
        batched = evaluate(net, eval_set, batch_users=batch)
        assert batched.keys() == whole.keys()
        for k in whole:
            assert batched[k] == pytest.approx(whole[k], abs=1e-6), (batch, k)


def test_user_batches_give_every_user_the_same_numbers(data):
    """The same ranks for every user whatever the batch; only float sums may round apart."""
    torch.manual_seed(2)
    net = Caser(data.num_users, data.num_items, ModelConfig(d=8)).eval()
    eval_set = data.eval_set("test", L=5)

    def per_user(batch: int, batch_users: int | None = None) -> dict[str, torch.Tensor]:
        parts = [batch_metrics(net, eval_set, start, min(start + batch, len(eval_set)), batch_users)
                 for start in range(0, len(eval_set), batch)]
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}

    whole = per_user(len(eval_set))
    assert len(whole["map"]) == len(eval_set)
    # Ranges of users (one feature pass each) and, within them, batches scored at once.
    for batch, batch_users in [(1, None), (5, None), (eval_batch_users(eval_set.num_items), None),
                               (len(eval_set), 1), (len(eval_set), 7), (13, 4)]:
        for k, values in per_user(batch, batch_users).items():
            assert torch.allclose(values, whole[k], rtol=0, atol=1e-12), (batch, k, (values - whole[k]).abs().max())


@pytest.mark.parametrize("num_items", [10, 1682, 23_000, 5_000_000])
def test_the_default_batch_keeps_to_the_cell_budget(num_items):
    users = eval_batch_users(num_items)
    assert users >= 1
    assert users * (num_items + 1) <= max(EVAL_BATCH_CELLS, num_items + 1)
    assert (users + 1) * (num_items + 1) > EVAL_BATCH_CELLS  # and uses it


@pytest.mark.parametrize("protocol", ["validation", "test"])
def test_evaluation_equals_the_per_user_reference_on_a_model(data, protocol):
    torch.manual_seed(1)
    net = Caser(data.num_users, data.num_items, ModelConfig(d=8))
    eval_set = data.eval_set(protocol, L=5)
    fast, slow = evaluate(net, eval_set, "x", batch_users=16), reference_evaluate(net, eval_set, "x")
    assert fast.keys() == slow.keys() and len(fast) == 9
    for k in fast:
        assert fast[k] == pytest.approx(slow[k], abs=1e-6), k


def test_items_seen_in_training_are_never_recommended():
    # User 0 saw 1, 2, 3 in training; 4 is held out. 1..3 are the most popular, yet 4 comes first.
    train = Sequences.from_lists([[1, 2, 3], [1, 2, 3, 4]], num_items=5)
    held = Sequences.from_lists([[4], []], num_items=5)
    data = PreparedData(Split(train=train, val=held, test=Sequences.from_lists([[], []], 5)))
    m = popularity_metrics(data, "validation")
    assert m["val/prec@1"] == 1.0 and m["val/map"] == 1.0


def test_popularity_counts_training_events():
    train = Sequences.from_lists([[1, 2], [2, 3], [2]], num_items=4)
    held = Sequences.from_lists([[3], [1], [4]], num_items=4)
    data = PreparedData(Split(train=train, val=held, test=Sequences.from_lists([[], [], []], 4)))
    m = popularity_metrics(data, "validation")
    # user 0 ranks 3 (count 1) before 4 (0); user 1 ranks 1 first; user 2 ranks 1, 3 before 4.
    assert m["val/map"] == pytest.approx(np.mean([1.0, 1.0, 1 / 3]))


def test_evaluation_keeps_to_the_model_device(data):
    """Every tensor the ranking makes follows the model's device. No GPU here: the `meta`
    device stands in for one, and a CPU-made tensor mixed into its maths raises."""
    net = Caser(data.num_users, data.num_items, ModelConfig(d=8, nv=1, nh=2)).to("meta")
    per_user = batch_metrics(net, data.eval_set("validation", 5), 0, 10, batch_users=3)
    assert per_user and all(v.device.type == "meta" for v in per_user.values())
