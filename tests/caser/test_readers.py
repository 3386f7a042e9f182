"""Readers: each format, auto-detection, dense ids, time order, one-line errors naming lines."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from caser.errors import DataError
from caser.readers import detect_format, read_interactions, stable_argsort


def write(tmp_path: Path, text: str, name: str = "data.txt") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_triplets_keep_file_order_and_remap_ids_sorted_by_raw_id(tmp_path):
    path = write(tmp_path, "20 7 5\n10 9 3\n20 3 1\n10 7 4\n20 9 2\n")
    seqs = read_interactions(path, "triplets")
    assert seqs.user_ids.tolist() == [10, 20]
    assert seqs.item_ids[1:].tolist() == [3, 7, 9]
    # user 10: 9, 7 -> dense 3, 2; user 20: 7, 3, 9 -> dense 2, 1, 3
    assert seqs.to_lists() == [[3, 2], [2, 1, 3]]
    assert seqs.num_items == 3


def test_quadruplets_sort_each_user_by_timestamp_stably(tmp_path):
    # user 1: t=30 item 5, t=10 item 6, t=10 item 4 (tie: file order 6 before 4), t=20 item 7
    path = write(tmp_path, "1 5 1 30\n1 6 1 10\n2 4 1 5\n1 4 1 10\n1 7 1 20\n")
    seqs = read_interactions(path, "quadruplets")
    raw = [[seqs.item_ids[i] for i in seqs.user(u)] for u in range(seqs.num_users)]
    assert raw == [[6, 4, 7, 5], [4]]


def test_quadruplets_accept_tabs_and_mixed_whitespace(tmp_path):
    path = write(tmp_path, "1\t2\t5\t100\n1  3 5\t50\n")
    seqs = read_interactions(path)
    assert seqs.item_ids[seqs.user(0)].tolist() == [3, 2]


def test_movielens_u_data_sorted_by_timestamp(tmp_path):
    path = write(tmp_path, "196\t242\t3\t881250949\n196\t302\t3\t881250000\n", "u.data")
    seqs = read_interactions(path, "movielens")
    assert seqs.item_ids[seqs.user(0)].tolist() == [302, 242]


def test_ratings_dat_double_colon_format_is_detected_and_sorted(tmp_path):
    path = write(tmp_path, "1::1193::5::978300760\n1::661::3::978302109\n2::914::3::978298413\n"
                           "1::3408::4::978300275\n")  # fmt: skip
    assert detect_format(path) == "ratings-dat"
    seqs = read_interactions(path)
    assert seqs.item_ids[seqs.user(0)].tolist() == [3408, 1193, 661]
    assert seqs.item_ids[seqs.user(1)].tolist() == [914]


def test_pairs_keep_file_order(tmp_path):
    path = write(tmp_path, "b x\na y\nb z\nb y\n")
    seqs = read_interactions(path, "pairs")
    assert seqs.user_ids.tolist() == ["a", "b"]
    assert [seqs.item_ids[seqs.user(u)].tolist() for u in range(2)] == [["y"], ["x", "z", "y"]]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1 2\n", "pairs"),
        ("1 2 3\n", "triplets"),
        ("\n\n1 2 3 4\n", "quadruplets"),
        ("1::2::3::4\n", "ratings-dat"),
        ("fecha_dato,ncodpers,ind_ahor_fin_ult1\n2015-01-28,1,0\n", "santander"),
    ],
)
def test_auto_detects_format_from_first_nonempty_line(tmp_path, text, expected):
    assert detect_format(write(tmp_path, text)) == expected


def test_auto_reads_the_same_as_the_named_format(tmp_path):
    path = write(tmp_path, "3 1 1 9\n3 2 1 8\n4 1 1 7\n")
    auto, named = read_interactions(path), read_interactions(path, "quadruplets")
    assert auto.to_lists() == named.to_lists() == [[2, 1], [1]]


def test_blank_lines_are_skipped(tmp_path):
    path = write(tmp_path, "1 2 3\n\n  \n1 3 3\n\n")
    assert read_interactions(path).to_lists() == [[1, 2]]


def test_item_zero_is_padding_and_never_an_event(tmp_path):
    path = write(tmp_path, "1 0\n1 5\n")
    seqs = read_interactions(path)
    assert seqs.items.min() >= 1
    assert seqs.item_ids[1:].tolist() == [0, 5]


def test_more_columns_than_the_first_line_names_the_line(tmp_path):
    path = write(tmp_path, "1 2 3\n1 3 3\n\n1 4 3 99\n")
    with pytest.raises(DataError, match=r"data\.txt: line 4: expected 3 columns, found 4"):
        read_interactions(path)


def test_fewer_columns_than_the_first_line_names_the_line(tmp_path):
    path = write(tmp_path, "1 2 3 10\n\n1 3 3 11\n1 4 3\n")
    with pytest.raises(DataError, match=r"data\.txt: line 4: expected 4 columns, found 3"):
        read_interactions(path)


def test_ratings_dat_wrong_column_count_names_the_line(tmp_path):
    path = write(tmp_path, "1::2::3::4\n1::2::3\n")
    with pytest.raises(DataError, match=r"line 2: expected 4 columns, found 3"):
        read_interactions(path)


def test_non_numeric_timestamp_names_the_line(tmp_path):
    path = write(tmp_path, "1 2 3 10\n\n1 3 3 11\n1 4 3 yesterday\n")
    with pytest.raises(DataError, match=r"data\.txt: line 4: timestamp 'yesterday' is not a"):
        read_interactions(path)


@pytest.mark.parametrize("text", ["", "\n\n   \n"])
def test_empty_file_is_a_one_line_error(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(DataError, match=r"data\.txt: line 1: empty file") as info:
        read_interactions(path)
    assert "\n" not in str(info.value)


def test_empty_file_with_named_format_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="empty file"):
        read_interactions(write(tmp_path, ""), "triplets")


def test_missing_file_and_directory_are_data_errors(tmp_path):
    with pytest.raises(DataError, match=r"nope\.txt: no such file"):
        read_interactions(tmp_path / "nope.txt")
    with pytest.raises(DataError, match="is a directory"):
        read_interactions(tmp_path)


def test_unknown_format_name_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match=r"unknown format 'csvish'.*triplets"):
        read_interactions(write(tmp_path, "1 2\n"), "csvish")


def test_undetectable_column_count_names_the_line(tmp_path):
    with pytest.raises(DataError, match=r"line 2: cannot detect the format from 5 column"):
        read_interactions(write(tmp_path, "\n1 2 3 4 5\n"))


def test_indptr_and_items_are_int64(tmp_path):
    seqs = read_interactions(write(tmp_path, "1 2\n2 2\n"))
    assert seqs.indptr.dtype == np.int64 and seqs.items.dtype == np.int64
    assert seqs.indptr.tolist() == [0, 1, 2]


@pytest.mark.parametrize("high", [1, 300, 70_000, 2**40, 2**62])
def test_stable_argsort_matches_numpy_stable_sort(high):
    keys = np.random.default_rng(high).integers(0, high, size=5000)
    assert np.array_equal(stable_argsort(keys), np.argsort(keys, kind="stable"))


def test_fractional_timestamps_sort_too(tmp_path):
    path = write(tmp_path, "1 5 1 2.5\n1 6 1 0.5\n1 7 1 1.5e0\n1 8 1 0.5\n")
    seqs = read_interactions(path)
    assert seqs.item_ids[seqs.user(0)].tolist() == [6, 8, 7, 5]


def test_header_line_above_numeric_ids_is_rejected_not_read_as_an_event(tmp_path):
    path = write(tmp_path, "\nuser item rating\n1 2 5\n1 3 4\n")
    with pytest.raises(DataError, match=r"line 2: looks like a header \('user item rating'\)"):
        read_interactions(path)


@pytest.mark.parametrize("fmt", ["triplets", "pairs"])
def test_a_named_format_with_too_few_columns_is_refused_not_misread(tmp_path, fmt):
    # Given fewer names than fields, pandas would take the users as an index: no error, wrong data.
    path = write(tmp_path, "1 10 5 100\n2 20 4 101\n")
    with pytest.raises(DataError, match=r"line 1: expected \d columns, found 4"):
        read_interactions(path, fmt)


def test_a_stray_quote_is_part_of_an_id_and_swallows_no_line(tmp_path):
    path = write(tmp_path, '1 "a 5 100\n1 b 5 101\n2 c" 4 100\n3 d 4 100\n')
    seqs = read_interactions(path)
    assert seqs.num_users == 3 and len(seqs.items) == 4
    assert sorted(seqs.item_ids[1:]) == ['"a', "b", 'c"', "d"]


def test_ratings_dat_with_spaces_or_an_empty_field_names_the_line(tmp_path):
    for text, found in (("1::10::5::100\n2::Toy Story::5::101\n", 5), ("1::10::5::100\n1::::5::100\n", 3)):
        path = write(tmp_path, text, "ratings.dat")
        with pytest.raises(DataError, match=rf"line 2: expected 4 columns, found {found}"):
            read_interactions(path)


@pytest.mark.parametrize("fmt", ["auto", "movielens"])
def test_a_compressed_file_is_refused_as_such(tmp_path, fmt):
    import gzip

    path = tmp_path / "u.data.gz"
    path.write_bytes(gzip.compress(b"1 10 5 100\n2 20 4 101\n"))
    with pytest.raises(DataError, match="u.data.gz: is gzip-compressed; decompress it first"):
        read_interactions(path, fmt)


def test_a_plain_file_named_like_an_archive_is_read_as_text(tmp_path):
    seqs = read_interactions(write(tmp_path, "1 10 5 100\n2 20 4 101\n", "plain.gz"))
    assert seqs.num_users == 2


def test_an_id_that_begins_like_a_magic_number_is_still_text(tmp_path):
    seqs = read_interactions(write(tmp_path, "BZhang 10 5 100\nPKarl 11 4 101\n"))
    assert sorted(seqs.user_ids) == ["BZhang", "PKarl"]


# Ids that a numeric read merged: a leading zero, a decimal point, and two integers above 2**53
# that a float column (the decimal point puts the column in floats) cannot tell apart.
LOOKALIKES = ["7", "07", "5", "5.0", str(2**53), str(2**53 + 1)]
LINE = {
    "pairs": "{user} {item}", "triplets": "{user} {item} 5", "quadruplets": "{user} {item} 5 {t}",
    "movielens": "{user}\t{item}\t5\t{t}", "ratings-dat": "{user}::{item}::5::{t}",
    "gowalla": "{user}\t2010-10-19T23:55:{t:02d}Z\t30.2\t-97.7\t{item}",
}


@pytest.mark.parametrize("fmt", LINE)
def test_ids_are_tokens_compared_as_the_file_spells_them(tmp_path, fmt):
    """Issue 24 defect 9: `07` and `7`, `5.0` and `5`, 2**53 and 2**53 + 1 were one id each."""
    events = [(user, item) for user in LOOKALIKES for item in LOOKALIKES]
    text = "".join(LINE[fmt].format(user=u, item=i, t=t) + "\n" for t, (u, i) in enumerate(events))
    seqs = read_interactions(write(tmp_path, text), fmt)
    assert seqs.num_users == seqs.num_items == len(LOOKALIKES)
    # Not all canonical integers: both columns sort by text, and keep the file's spelling.
    assert seqs.user_ids.tolist() == seqs.item_ids[1:].tolist() == sorted(LOOKALIKES)
    for u, user in enumerate(seqs.user_ids):
        assert seqs.item_ids[seqs.user(u)].tolist() == LOOKALIKES, user


def test_canonical_integer_ids_stay_integers_in_numeric_order_beyond_2_to_the_53(tmp_path):
    big = [2**53 + 1, 2**53, 10, 9]
    seqs = read_interactions(write(tmp_path, "".join(f"{i} {i}\n" for i in big)), "pairs")
    assert seqs.user_ids.dtype == np.int64 and seqs.user_ids.tolist() == sorted(big)
    assert seqs.item_ids[1:].tolist() == sorted(big)


def test_a_column_with_a_non_integer_token_sorts_by_text(tmp_path):
    seqs = read_interactions(write(tmp_path, "10 a\n9 b\n10 c\n1e1 c\n"), "pairs")
    assert seqs.user_ids.tolist() == ["10", "1e1", "9"]
    assert seqs.to_lists() == [[1, 3], [3], [2]]


COMMENT = "no format has comment lines: remove it"


def test_a_comment_first_line_is_named_with_the_format_it_was_taken_for(tmp_path):
    """Issue 24 defect 28: `# comment` above quadruplets gave "line 2: expected 2 columns,
    found 4", blaming a good line. Comment lines are refused, not skipped: no format has them,
    and `#` may begin an id, so skipping would quietly drop data."""
    path = write(tmp_path, "# comment\n1 2 5 100\n1 3 5 101\n")
    with pytest.raises(DataError) as info:
        read_interactions(path)
    assert str(info.value) == (f"{path}: line 1: '# comment' looks like a comment (read as pairs, "
                               f"the format detected from it: 2 columns); {COMMENT}")
    with pytest.raises(DataError, match=rf"line 1: '# comment' looks like a comment \(in a "
                                        rf"quadruplets file\); {COMMENT}"):
        read_interactions(path, "quadruplets")
    consistent = write(tmp_path, "# x\n1 2\n1 2 3\n")  # line 2 agrees with the comment's count
    with pytest.raises(DataError, match=rf"line 1: '# x' looks like a comment .*{COMMENT}"):
        read_interactions(consistent)


def test_a_first_line_unlike_the_rest_is_blamed_not_the_second(tmp_path):
    path = write(tmp_path, "\nuser item\n1 2 5 100\n1 3 5 101\n")
    with pytest.raises(DataError) as info:
        read_interactions(path)
    assert str(info.value) == (f"{path}: line 2: 'user item' read as pairs (format detected from "
                               "line 2: 2 columns), but line 3 has 4; fix or remove line 2")


@pytest.mark.parametrize("text, lineno", [
    ("1 2\n1 3\n# note\n2 3\n", 3),                  # two columns: read as a user named '#'
    ("1 2 5 10\n# one note here\n2 3 5 11\n", 2),    # four columns: its timestamp is no number
    ("1 2\n#note\n", 2),                             # one column: a column count error
    ("1 2 3\n#a b c d\n", 2),                        # four: a column count error
    ("#one two three four five\n1 2\n", 1),          # no format has 5 columns
])  # fmt: skip
def test_a_comment_line_anywhere_is_refused_naming_its_line(tmp_path, text, lineno):
    with pytest.raises(DataError, match=rf"line {lineno}: .*{COMMENT}$"):
        read_interactions(write(tmp_path, text))


def test_a_later_bad_line_after_a_good_first_line_is_still_the_one_named(tmp_path):
    path = write(tmp_path, "1 2 5 100\n1 3 5 101\n1 4 5\n")
    with pytest.raises(DataError, match=r"^\S+: line 3: expected 4 columns, found 3 \(format "
                                        r"quadruplets, detected from line 1\)$"):
        read_interactions(path)
