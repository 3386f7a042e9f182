"""Gowalla check-ins: time order per user (stable), plain or gzip, detection, lines named in errors."""
from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from caser.errors import DataError
from caser.gowalla import read_gowalla
from caser.readers import detect_format, read_interactions

# Newest first within a user, as SNAP lists them; user 7 before user 3; two ties in time.
CHECKINS = """\
7\t2010-10-19T23:55:27Z\t30.2359091167\t-97.7951395833\t22847
7\t2010-10-18T22:17:43Z\t30.2691029532\t-97.7493953705\t420315
7\t2010-10-18T22:17:43Z\t30.2557309927\t-97.7633857727\t316637
7\t2010-10-19T01:02:03Z\t30.2557309927\t-97.7633857727\t16516

3\t2009-05-01T10:00:00Z\t40.0\t-70.0\t420315
3\t2009-04-30T10:00:00Z\t40.0\t-70.0\t22847
3\t2009-05-01T10:00:00Z\t40.0\t-70.0\t16516
"""


def write(tmp_path: Path, text: str, name: str = "checkins.txt") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def raw_items(seqs, user: int) -> list:
    return seqs.item_ids[seqs.user(user)].tolist()


def test_checkins_are_ordered_by_time_within_each_user_ties_in_file_order(tmp_path):
    seqs = read_gowalla(write(tmp_path, CHECKINS))
    assert seqs.user_ids.tolist() == [3, 7]
    assert seqs.item_ids[1:].tolist() == [16516, 22847, 316637, 420315]
    # user 3: 04-30 22847, then the 05-01 tie in file order: 420315 before 16516
    assert raw_items(seqs, 0) == [22847, 420315, 16516]
    # user 7: the 22:17:43 tie in file order (420315, 316637), then 01:02:03, then 23:55:27
    assert raw_items(seqs, 1) == [420315, 316637, 16516, 22847]


def test_a_gzipped_file_reads_as_the_plain_one_and_is_detected(tmp_path):
    plain = read_gowalla(write(tmp_path, CHECKINS))
    packed = tmp_path / "loc-gowalla_totalCheckins.txt.gz"
    packed.write_bytes(gzip.compress(CHECKINS.encode()))
    for seqs in (read_interactions(packed), read_interactions(packed, "gowalla")):
        assert seqs.to_lists() == plain.to_lists()
        assert seqs.item_ids.tolist()[1:] == plain.item_ids.tolist()[1:]


def test_format_is_detected_from_five_tab_fields_with_an_iso_time(tmp_path):
    assert detect_format(write(tmp_path, "\n" + CHECKINS)) == "gowalla"
    assert read_interactions(write(tmp_path, CHECKINS)).num_events == 7


def test_five_fields_without_an_iso_time_are_not_gowalla(tmp_path):
    with pytest.raises(DataError, match=r"line 1: cannot detect the format from 5 column.*Gowalla"):
        read_interactions(write(tmp_path, "7\t1287532527\t30.2\t-97.7\t22847\n"))


def test_a_gzip_that_is_not_gowalla_is_still_refused_as_compressed(tmp_path):
    path = tmp_path / "u.data.gz"
    path.write_bytes(gzip.compress(b"1 10 5 100\n2 20 4 101\n"))
    with pytest.raises(DataError, match=r"is gzip-compressed; decompress it first \(a gzipped Gowalla"):
        read_interactions(path)


@pytest.mark.parametrize("line, found", [
    ("9\t2010-10-19T23:55:27Z\t30.2\t-97.7", 4),
    ("9\t2010-10-19T23:55:27Z\t30.2\t-97.7\t22847\textra", 6),
])  # fmt: skip
def test_a_line_with_another_number_of_fields_is_named(tmp_path, line, found):
    text = CHECKINS + line + "\n" + "9\t2010-10-19T23:55:27Z\t30.2\t-97.7\t1\n"
    with pytest.raises(DataError, match=rf"checkins.txt: line 9: expected 5 columns, found {found}"):
        read_gowalla(write(tmp_path, text))


@pytest.mark.parametrize("time", [
    "2010-10-19 23:55:27Z",      # a space for the T
    "2010-13-19T23:55:27Z",      # month 13
    "2010-10-19T23:55:27Z+0100",  # longer than the format
    "2010-10-19T23:55:27",       # no Z
    "",                          # empty field
    "2010-1x-19T23:55:27Z",      # a letter among the digits
])  # fmt: skip
def test_a_malformed_time_names_its_line_and_value(tmp_path, time):
    text = CHECKINS + f"9\t{time}\t30.2\t-97.7\t22847\n"
    with pytest.raises(DataError, match=r"line 9: check-in time .* is not YYYY-MM-DDTHH:MM:SSZ") as info:
        read_gowalla(write(tmp_path, text))
    assert repr(time) in str(info.value) and "\n" not in str(info.value)


def test_an_empty_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="line 1: empty file"):
        read_gowalla(write(tmp_path, ""))
