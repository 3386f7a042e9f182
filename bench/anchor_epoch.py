"""The original implementation's seconds per training epoch, for `bench/space_speed.py`.

    PYTHONPATH=../shared/anchor/caser_pytorch python bench/anchor_epoch.py '{"triplets": ..., ...}'

Run in a process of its own with the original's folder on the path (its modules have plain
names such as `caser` and `utils`, which must not meet the project's). The job (JSON) names a
triplet file of training events and the configuration. One epoch is trained first (the original
builds each user's candidate negatives then), then `epochs - 1` more, timed together: each is
the original's whole epoch, shuffling and negative sampling included. Prints the mean seconds.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import time
from contextlib import redirect_stdout


def main() -> int:
    job = json.loads(sys.argv[1])
    import torch
    from interactions import Interactions  # the original's, from PYTHONPATH
    from train_caser import Recommender
    from utils import set_seed

    torch.set_num_threads(job["threads"])
    set_seed(0, cuda=False)
    model, train = job["model"], job["train"]
    data = Interactions(job["triplets"])
    data.to_sequence(model["L"], model["T"])
    args = argparse.Namespace(L=model["L"], d=model["d"], nv=model["nv"], nh=model["nh"], drop=model["dropout"],
                              ac_conv=model["ac_conv"], ac_fc=model["ac_fc"])
    rec = Recommender(n_iter=1, batch_size=train["batch_size"], l2=train["l2"], neg_samples=train["neg_samples"],
                      learning_rate=train["lr"], use_cuda=False, model_args=args)
    with redirect_stdout(io.StringIO()):  # its own per-epoch lines
        rec.fit(data, None, verbose=False)
        rec._n_iter = job["epochs"] - 1
        start = time.perf_counter()
        rec.fit(data, None, verbose=False)
        seconds = (time.perf_counter() - start) / rec._n_iter
    print(seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
