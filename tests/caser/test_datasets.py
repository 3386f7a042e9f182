"""Loading by spec (synthetic, ml-100k cache, file path), k-core filtering, never downloading."""
from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from caser import datasets
from caser.catalogue import CATALOGUE
from caser.config import DataConfig
from caser.datasets import load_sequences, load_split
from caser.errors import DataError
from caser.filtering import kcore
from caser.sequences import Sequences
from caser.synthetic import generate
from tests.helpers import SHARED_DATA

REAL_U_DATA = SHARED_DATA / "ml-100k" / "u.data"
UNROUTABLE = "http://127.0.0.1:9/"  # the discard port refuses at once: no network, no wait


@pytest.fixture(autouse=True)
def no_download(monkeypatch, tmp_path):
    """No test may reach the network, and none may touch the user's real cache."""
    monkeypatch.setenv("CASER_MIRROR", UNROUTABLE)
    monkeypatch.setenv("CASER_CACHE", str(tmp_path / "cache"))


def real_u_data() -> Path:
    if not REAL_U_DATA.is_file():
        pytest.skip(f"{REAL_U_DATA} not present")
    return REAL_U_DATA


def zip_mirror(tmp_path: Path, u_data: bytes) -> str:
    """A file:// mirror holding an ml-100k.zip whose ml-100k/u.data is `u_data`."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("ml-100k/u.data", u_data)
    mirror = tmp_path / "mirror"
    mirror.mkdir(exist_ok=True)
    (mirror / "ml-100k.zip").write_bytes(archive.getvalue())
    return mirror.as_uri()


# --- k-core ---------------------------------------------------------------------------------


def test_kcore_is_recursive_until_every_user_and_item_meets_the_minimum():
    # Item 4 is rare (1 event); dropping it leaves user 2 with one event, and dropping user 2
    # leaves item 3 with one event, which in turn must go.
    seqs = Sequences.from_lists([[1, 2, 3], [1, 2], [3, 4], [2, 1]])
    out = kcore(seqs, min_user=2, min_item=2)
    assert out.to_lists() == [[1, 2], [1, 2], [2, 1]]
    assert out.user_ids.tolist() == [0, 1, 3]
    assert out.item_ids.tolist() == [0, 1, 2]
    assert out.num_items == 2


def test_kcore_redensifies_ids_and_keeps_raw_maps_consistent():
    s = Sequences.from_lists([[1, 3, 2], [3, 2], [1, 3]])
    seqs = Sequences(s.indptr, s.items, 3, np.array([10, 20, 30]), np.array([-1, 100, 300, 200]))
    out = kcore(seqs, min_user=0, min_item=2)  # item 2 (raw 300) has 2 events, item 1 too
    raw_before = [[seqs.item_ids[i] for i in seqs.user(u)] for u in range(3)]
    raw_after = [[out.item_ids[i] for i in out.user(u)] for u in range(out.num_users)]
    assert raw_after == raw_before
    out = kcore(seqs, min_user=0, min_item=3)  # only item 3 (raw 200) has 3 events
    assert out.to_lists() == [[1], [1], [1]]
    assert out.item_ids.tolist() == [-1, 200]


def test_kcore_with_zero_minimums_is_the_identity():
    seqs = Sequences.from_lists([[1], [2, 1]])
    assert kcore(seqs, 0, 0) is seqs


def test_kcore_drops_users_left_without_events():
    seqs = Sequences.from_lists([[1, 2], [3], [1, 2]])
    out = kcore(seqs, min_user=0, min_item=2)
    assert out.num_users == 2 and out.user_ids.tolist() == [0, 2]


# --- specs ----------------------------------------------------------------------------------


def test_synthetic_spec_uses_default_knobs_and_cfg_seed():
    seqs = load_sequences(DataConfig(spec="synthetic", seed=5))
    assert np.array_equal(seqs.items, generate(seed=5).items)


def test_synthetic_size_spec_reaches_requested_size():
    seqs = load_sequences(DataConfig(spec="synthetic:users=300, items=500,interactions=9_000"))
    assert (seqs.num_users, seqs.num_items) == (300, 500)
    assert abs(seqs.num_events - 9000) <= 270


def test_synthetic_spec_with_unknown_key_is_a_data_error():
    with pytest.raises(DataError, match=r"'synthetic:users=10,length=5'.*unknown option 'length"):
        load_sequences(DataConfig(spec="synthetic:users=10,length=5"))
    with pytest.raises(DataError, match=r"users='many' is not an integer"):
        load_sequences(DataConfig(spec="synthetic:users=many"))


def test_file_spec_reads_with_cfg_format_then_filters(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_text("1 a\n1 b\n2 a\n2 b\n2 c\n3 a\n")
    seqs = load_sequences(DataConfig(spec=str(path), format="pairs", min_user_interactions=2))
    assert seqs.user_ids.tolist() == [1, 2]
    assert seqs.to_lists() == [[1, 2], [1, 2, 3]]


def test_unknown_spec_is_neither_a_dataset_nor_a_file(tmp_path):
    with pytest.raises(DataError, match=r"'ml-25m': no such file, and not a known dataset"):
        load_sequences(DataConfig(spec="ml-25m"))


def test_nothing_left_after_filtering_is_a_data_error(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_text("1 a\n2 b\n")
    with pytest.raises(DataError, match="no user left after filtering"):
        load_sequences(DataConfig(spec=str(path), min_user_interactions=2))


def test_load_split_reads_filters_and_splits(tmp_path):
    path = tmp_path / "q.txt"
    path.write_text("1 10 5 3\n1 11 5 1\n1 12 5 2\n1 13 5 4\n2 10 5 1\n")
    split = load_split(DataConfig(spec=str(path), holdout="loo", min_user_interactions=3))
    assert split.train.to_lists() == [[2, 3]]
    assert split.val.to_lists() == [[1]] and split.test.to_lists() == [[4]]


# --- ml-100k --------------------------------------------------------------------------------


def test_ml100k_missing_and_offline_says_where_to_put_the_file(tmp_path):
    with pytest.raises(DataError) as info:
        load_sequences(DataConfig(spec="ml-100k"))
    message = str(info.value)
    target = tmp_path / "cache" / "ml-100k" / "u.data"
    assert "download failed" in message and str(target) in message
    assert "\n" not in message


def test_ml100k_wrong_checksum_is_rejected_and_not_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("CASER_MIRROR", zip_mirror(tmp_path, b"1\t2\t3\t4\n"))
    with pytest.raises(DataError, match=r"sha256 .*put its ml-100k/u\.data at"):
        load_sequences(DataConfig(spec="ml-100k"))
    assert not (tmp_path / "cache" / "ml-100k" / "u.data").exists()


def test_ml100k_verified_archive_is_stored_in_the_cache_once(tmp_path, monkeypatch):
    data = real_u_data().read_bytes()
    assert "sha256:" + hashlib.sha256(data).hexdigest() == CATALOGUE["ml-100k"].source.digest
    monkeypatch.setenv("CASER_MIRROR", zip_mirror(tmp_path, data))
    path = datasets.dataset_path("ml-100k")
    assert path == tmp_path / "cache" / "ml-100k" / "u.data" and path.read_bytes() == data
    monkeypatch.setenv("CASER_MIRROR", UNROUTABLE)
    assert datasets.dataset_path("ml-100k") == path  # second call uses the cache, no download


def test_ml100k_cached_real_file_has_943_users_1682_items_100000_events(tmp_path):
    cache = tmp_path / "explicit"
    (cache / "ml-100k").mkdir(parents=True)
    (cache / "ml-100k" / "u.data").write_bytes(real_u_data().read_bytes())
    seqs = load_sequences(DataConfig(spec="ml-100k"), cache_dir=cache)
    assert (seqs.num_users, seqs.num_items, seqs.num_events) == (943, 1682, 100_000)
    assert seqs.user_ids[0] == 1 and seqs.item_ids[1] == 1 and seqs.item_ids[-1] == 1682


@pytest.mark.parametrize("spec, message", [
    ("", "data spec '' is empty: give synthetic, a dataset name (ml-100k, ml-1m, gowalla) or a file"),
    ("~nosuchuser/u.data", "data spec '~nosuchuser/u.data': cannot expand ~nosuchuser: no such user"),
])
def test_an_empty_spec_or_an_unknown_home_is_one_line(spec, message):
    """`--data ''` read the current folder (".: is a directory"); `~nosuchuser` raised
    RuntimeError("Could not determine home directory") from pathlib, a traceback."""
    with pytest.raises(DataError) as info:
        load_sequences(DataConfig(spec=spec))
    assert str(info.value).startswith(message)
