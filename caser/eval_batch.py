"""How many users one evaluation batch holds: the bound on its memory, shared (torch-free) by
`caser.evaluation`, which batches by it, and `caser.memory`, which estimates by it.

An evaluation walks the users in ranges of EVAL_RANGE_USERS (one Lightning validation step
each): a range's user vectors come from one pass of the model's feature layers, whose many
small operations cost per call, and its metrics from one pass over its counts. Within a range
the scores are made and ranked eval_batch_users at a time, the bound on memory."""
from __future__ import annotations

# A batch of B users scores B x (num_items + 1) cells; this many at most (16 MB of float32
# scores, a few times that in all while ranking): large enough that the scoring product runs
# near its full speed, small enough to stay in cache-friendly sizes (docs/measurements.md).
EVAL_BATCH_CELLS = 2**22


def eval_batch_users(num_items: int) -> int:
    """Users per evaluation batch for a catalogue of num_items: EVAL_BATCH_CELLS' worth."""
    return max(1, EVAL_BATCH_CELLS // (num_items + 1))


# Users whose vectors one feature pass computes: (B, 2d + 1) floats and the features'
# intermediates, a few MB; a pass over 4,096 users costs about half as much per user as one
# over 182 (docs/measurements.md).
EVAL_RANGE_USERS = 4096
