"""The paper studies on ml-1m and gowalla: the paper's protocol, the dataset's filter written out
(so that --data with a local copy is filtered the same), and the ranges of studies/paper.toml."""
from __future__ import annotations

import pytest

from caser.catalogue import preset_filter
from search.studyfile import load_study_spec


@pytest.mark.parametrize("name, dataset", [("paper-ml1m", "ml-1m"), ("paper-gowalla", "gowalla")])
def test_a_paper_study_uses_the_protocol_the_filter_and_the_ranges_of_the_paper(name, dataset):
    spec = load_study_spec(name)
    data = spec.data
    assert (data.spec, data.holdout, data.train_frac, data.val_frac) == (dataset, "ratio", 0.7, 0.1)
    assert (data.min_user_interactions, data.min_item_interactions) == preset_filter(dataset)
    paper = load_study_spec("paper")
    assert spec.space == paper.space and spec.fixed == paper.fixed
    local = spec.with_overrides(data_spec="ratings.dat").data  # a local copy: the same filter
    assert (local.min_user_interactions, local.min_item_interactions) == preset_filter(dataset)
