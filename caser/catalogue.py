"""The datasets `--data` knows by name: where each is published, how it is checked and read, and
the cold-start filter Caser's paper applied to it (its preset).

    from caser.catalogue import CATALOGUE, preset_filter
    CATALOGUE["ml-1m"].source.url          # GroupLens's ml-1m.zip
    preset_filter("gowalla")               # (15, 15); (0, 0) for anything not named here

Presets: the paper (Tang & Wang, WSDM 2018, Section 4, "Datasets") removes cold-start users and
items with fewer than n feedbacks, recursively. n = 5 for MovieLens-1M is confirmed by the first
author (graytowne/caser_pytorch issue 14: "we recurrently removed users and items that has less
than 5 interactions"); n = 15 for Gowalla is the paper's figure as commonly quoted, not checked
against its text here. ml-100k has no preset: every user there has 20 ratings or more, and its
studies ran unfiltered. An explicit minimum, 0 included, wins over a preset (see `DataConfig`).

Digests (the bytes each one covers is in `Source.digest_of`):
- ml-100k: sha256 of the member `u.data`, checked on the real file in the tests;
- ml-1m: sha256 of `ml-1m.zip`, from TensorFlow Datasets' url_checksums/movielens.txt
  (5,917,549 bytes);
- gowalla: md5 of `loc-gowalla_totalCheckins.txt.gz` from the DataRec library's Gowalla
  builder and dataset card (105,470,044 bytes); no published sha256 of this file was found.
"""
from __future__ import annotations

from dataclasses import dataclass

from caser.downloads import Source

GROUPLENS = "https://files.grouplens.org/datasets/movielens"


@dataclass(frozen=True)
class NamedDataset:
    """A dataset known by name: its source, the reader's format and its preset filter."""

    name: str
    source: Source
    format: str
    min_user_interactions: int = 0
    min_item_interactions: int = 0


CATALOGUE = {
    dataset.name: dataset
    for dataset in (
        NamedDataset(
            "ml-100k",
            Source(f"{GROUPLENS}/ml-100k.zip", member="ml-100k/u.data", digest_of="member",
                   digest="sha256:06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"),
            format="movielens",
        ),
        NamedDataset(
            "ml-1m",
            Source(f"{GROUPLENS}/ml-1m.zip", member="ml-1m/ratings.dat",
                   digest="sha256:a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20"),
            format="ratings-dat", min_user_interactions=5, min_item_interactions=5,
        ),
        NamedDataset(
            "gowalla",
            Source("https://snap.stanford.edu/data/loc-gowalla_totalCheckins.txt.gz", gunzip=True,
                   digest="md5:8ebd5ed2dd376d8982987c49429cb9f9"),
            format="gowalla", min_user_interactions=15, min_item_interactions=15,
        ),
    )
}  # fmt: skip


def preset_filter(spec: str) -> tuple[int, int]:
    """(min_user_interactions, min_item_interactions) the paper used for `spec`; (0, 0) if none."""
    dataset = CATALOGUE.get(spec)
    if dataset is None:
        return 0, 0
    return dataset.min_user_interactions, dataset.min_item_interactions
