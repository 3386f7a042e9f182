"""`caser.train.fit`: the process-wide floating-point setting it needs, and the runs it refuses
before Lightning would run them bare or fail in a traceback."""
from __future__ import annotations

import pytest
import torch

from caser.config import DataConfig, ModelConfig, TrainConfig
from caser.datasets import load_split
from caser.errors import DataError
from caser.train import fit, main
from tests.helpers.studies import TINY_DATA


def test_fit_flushes_subnormal_floats_to_zero():
    """Weights that only weight decay moves sink into the subnormal range, where the CPU is
    about 100 times slower (the ml-1m-size epoch time nearly doubled after the first epoch)."""
    torch.set_flush_denormal(False)
    subnormal = torch.tensor([1e-40])
    assert (subnormal * 1.0).item() != 0.0
    fit(ModelConfig(d=8, nv=1, nh=2), TrainConfig(epochs=1), load_split(DataConfig(spec=TINY_DATA)))
    assert (subnormal * 1.0).item() == 0.0


def test_a_split_with_nobody_to_evaluate_is_an_error_not_an_empty_success(tmp_path, capsys):
    path = tmp_path / "tiny.txt"
    path.write_text("1 1 5 1\n1 2 5 2\n2 1 5 1\n2 3 5 2\n2 2 5 3\n")  # too short to hold any out
    assert main(["--data", str(path), "--epochs", "1", "--json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: no user has a validation item to evaluate on")


@pytest.mark.skipif(torch.cuda.is_available() or torch.backends.mps.is_available(), reason="a GPU is here")
def test_asking_for_a_gpu_where_there_is_none_is_one_line(capsys):
    with pytest.raises(DataError, match="torch sees no GPU"):
        fit(ModelConfig(d=8, nv=1, nh=2), TrainConfig(epochs=1), load_split(DataConfig(spec=TINY_DATA)),
            accelerator="gpu")
    assert main(["--data", TINY_DATA, "--epochs", "1", "--accelerator", "gpu"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: --accelerator gpu: torch sees no GPU on this machine; use cpu or auto")


def test_fit_keeps_each_users_average_precision_and_splits_epoch_time():
    """Paired comparisons need the per-user AP whose mean is the reported MAP; the sweep's
    summary needs training and evaluation seconds apart."""
    result = fit(ModelConfig(d=8, nv=1, nh=2), TrainConfig(epochs=2), load_split(DataConfig(spec=TINY_DATA)))
    assert len(result.user_ap) == len(result.eval_users) > 0
    assert len(set(result.eval_users.tolist())) == len(result.eval_users)
    assert abs(result.user_ap.mean() - result.metrics["val/map"]) < 1e-6
    for row in result.history:
        assert row["eval_time_s"] > 0 and row["train_time_s"] > 0
        assert abs(row["train_time_s"] + row["eval_time_s"] - row["time_s"]) < 1e-9


def test_an_unknown_format_is_refused_even_for_synthetic_data(capsys):
    """Issue 16 defect 16: `--format xyz` on synthetic data trained as if it were not there."""
    with pytest.raises(ValueError, match="unknown format 'parquet'"):
        DataConfig(spec="synthetic", format="parquet")
    assert main(["--data", TINY_DATA, "--format", "xyz", "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --format: unknown format 'xyz'; choose from auto, triplets, quadruplets, "
                   "movielens, ratings-dat, pairs, santander, gowalla"]


@pytest.mark.parametrize("field, value", [("lr", float("nan")), ("lr", float("inf")),
                                          ("l2", float("nan")), ("l2", float("inf"))])
def test_a_learning_rate_or_weight_decay_that_is_not_finite_is_refused(field, value):
    """`--lr nan` reached torch (a message after training started); `--l2 inf` trained to 0."""
    with pytest.raises(ValueError, match=f"{field} must be a finite number"):
        TrainConfig(**{field: value})


def test_a_training_is_the_plain_loop_of_its_mini_batches():
    """fit hands Lightning one step per epoch and optimises the mini-batches itself: the result
    must be exactly a plain PyTorch loop's, seeded the same (every batch, in order, one Adam
    step each, dropout drawing from the stream of (seed, epoch))."""
    import lightning.pytorch as pl
    import torch.nn.functional as F

    from caser.data_module import PreparedData, TrainBatches
    from caser.evaluation import evaluate
    from caser.model import Caser

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        data = PreparedData(load_split(DataConfig(spec=TINY_DATA)))
        model, train = ModelConfig(d=8, nv=1, nh=2), TrainConfig(epochs=3, seed=5, batch_size=64)
        result = fit(model, train, data, "validation")
        pl.seed_everything(train.seed, verbose=False)
        net = Caser(data.num_users, data.num_items, model)
        adam = torch.optim.Adam(net.parameters(), lr=train.lr, weight_decay=train.l2, fused=True)
        epoch = [0]
        batches = TrainBatches(data.windows("validation", model.L, model.T), data.seen("validation"),
                               train.neg_samples, train.batch_size, train.seed, lambda: epoch[0])
        for epoch[0] in range(train.epochs):
            net.train()
            net.seed_dropout(train.seed, epoch[0])
            for users, seqs, targets, negatives in batches:
                scores = net(seqs, users, torch.cat([targets, negatives], 1))
                T = targets.size(1)
                loss = -F.logsigmoid(scores[:, :T]).mean() - F.logsigmoid(-scores[:, T:]).mean()
                adam.zero_grad(set_to_none=True)
                loss.backward()
                adam.step()
        assert evaluate(net, data.eval_set("validation", model.L))["val/map"] == result.metrics["val/map"]
    finally:
        torch.set_num_threads(threads)
