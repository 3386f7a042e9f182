"""The memory a training needs, estimated before anything is allocated, and the refusal of a
configuration the machine cannot hold (issue 16, defect 1: `--L 500` took 24 GB and the
kernel's out-of-memory killer)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from caser.config import DataConfig, ModelConfig, TrainConfig
from caser.data_module import PreparedData
from caser.datasets import load_split
from caser.memory import GB, TooLarge, available_memory, check_memory, estimate_memory, memory_needed
from caser.train import fit, main
from tests.helpers import ROOT

SYN = "synthetic:users=300,items=200,interactions=8000"  # the issue's data


@pytest.fixture(scope="module")
def prepared() -> PreparedData:
    return PreparedData(load_split(DataConfig(spec=SYN)))


def test_the_horizontal_convolutions_make_a_long_window_cost_hundreds_of_gigabytes(prepared):
    huge = memory_needed(ModelConfig(L=500), TrainConfig(), prepared, "validation")
    small = memory_needed(ModelConfig(), TrainConfig(), prepared, "validation")
    assert huge.total > 100 * GB  # B x d x L(L+1)(L+2)/6 floats kept for the backward pass
    assert huge.largest == "horizontal convolutions"
    assert small.total < 0.2 * GB
    # Each part grows with what it holds.
    assert memory_needed(ModelConfig(L=40), TrainConfig(batch_size=64), prepared, "validation").total < \
        memory_needed(ModelConfig(L=40), TrainConfig(batch_size=256), prepared, "validation").total
    wide = estimate_memory(ModelConfig(d=64), TrainConfig(), num_users=100_000, num_items=50_000,
                           num_windows=1_000_000, num_eval_users=100_000)
    assert wide.parts["parameters and Adam state"] > 4 * 4 * 50_000 * (3 * 64)


def test_a_configuration_larger_than_the_memory_is_refused_naming_what_to_lower(prepared):
    needed = memory_needed(ModelConfig(L=500), TrainConfig(), prepared, "validation")
    with pytest.raises(TooLarge) as refused:
        check_memory(needed, available=8 * GB)
    message = str(refused.value)
    assert "\n" not in message
    assert "needs about" in message and "8.0 GB available" in message and "lower --L" in message
    assert "lower space.L" in needed.refusal(8 * GB, lambda name: f"space.{name}")
    check_memory(memory_needed(ModelConfig(), TrainConfig(), prepared, "validation"), available=8 * GB)


def test_available_memory_is_what_this_machine_has_free():
    free = available_memory()
    assert free is not None and 0 < free
    with open("/proc/meminfo") as meminfo:
        total = next(int(line.split()[1]) * 1024 for line in meminfo if line.startswith("MemTotal:"))
    assert free <= total


def test_fit_refuses_before_allocating(prepared):
    with pytest.raises(TooLarge, match="lower --L"):
        fit(ModelConfig(L=5000), TrainConfig(epochs=1), prepared)


def test_the_issues_command_is_refused_in_one_line(capsys):
    code = main(["--data", SYN, "--L", "500", "--epochs", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("error: L=500") and "lower --L" in err[-1], err


def test_the_estimate_is_not_far_below_what_training_takes(tmp_path):
    """A real training of a long window in a fresh process: its peak memory growth stays under
    twice the estimate, and is at least half of it (so the estimate neither misses the cost
    nor refuses what fits)."""
    script = (
        "import resource, torch\n"
        "from caser.config import DataConfig, ModelConfig, TrainConfig\n"
        "from caser.data_module import PreparedData\n"
        "from caser.datasets import load_split\n"
        "from caser.memory import memory_needed\n"
        "from caser.train import fit\n"
        "torch.set_num_threads(1)\n"
        f"data = PreparedData(load_split(DataConfig(spec={SYN!r})))\n"
        "model, train = ModelConfig(L=30, nh=16), TrainConfig(epochs=1)\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024\n"
        "fit(ModelConfig(L=2), TrainConfig(epochs=1), data)  # Lightning's own first-use costs\n"
        "warm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024\n"
        "fit(model, train, data)\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024\n"
        "print(peak - warm, memory_needed(model, train, data, 'validation').total)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    grew, estimated = map(int, out.stdout.split()[-2:])
    assert estimated / 2 < grew < 2 * estimated, (grew, estimated)


def test_the_refusal_can_name_another_memory(prepared):
    needed = memory_needed(ModelConfig(L=500), TrainConfig(), prepared, "validation")
    with pytest.raises(TooLarge, match=r"8\.0 GB available on the GPU: lower --L"):
        check_memory(needed, 8 * GB, " on the GPU")
