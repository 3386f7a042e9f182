"""Odd files given as data: what is not a regular file is refused before anything opens it (a
FIFO would block, a device never ends), in one line saying what it is."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from caser.config import DataConfig
from caser.datasets import load_sequences, load_split
from caser.errors import DataError
from caser.readers import detect_format, read_interactions
from tests.helpers import ROOT


def test_a_fifo_as_data_is_refused_at_once_not_waited_on(tmp_path):
    """Issue 24 defect 17: `--data FIFO` hung with no output."""
    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)
    run = subprocess.run([sys.executable, "-m", "caser.train", "--data", str(fifo)], cwd=ROOT,
                         env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        f"error: {fifo}: is a FIFO (named pipe), not a regular file"]


def test_a_socket_is_refused_as_not_a_regular_file(tmp_path):
    path = tmp_path / "s"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        with pytest.raises(DataError, match=rf"^{path}: is a socket, not a regular file"):
            load_sequences(DataConfig(spec=str(path)))


@pytest.mark.parametrize("device, kind", [("/dev/zero", "a character device"),
                                          ("/dev/null", "a character device")])
@pytest.mark.parametrize("fmt", ["auto", "triplets", "gowalla", "santander"])
def test_a_device_is_refused_whatever_the_format(device, kind, fmt):
    """/dev/zero is one endless line: reading it would fill the memory."""
    with pytest.raises(DataError, match=rf"^{device}: is {kind}, not a regular file"):
        read_interactions(device, fmt)


def test_a_pipe_such_as_dev_stdin_is_refused(tmp_path):
    """/dev/stdin is /proc/self/fd/0: a pipe when data is piped in, a terminal otherwise."""
    read_end, write_end = os.pipe()
    try:
        with pytest.raises(DataError, match=r"is a FIFO \(named pipe\), not a regular file"):
            read_interactions(f"/proc/self/fd/{read_end}")
    finally:
        os.close(read_end)
        os.close(write_end)


def lines_of(fmt: str, count: int) -> list[bytes]:
    """`count` well-formed lines of `fmt`, a few users and items."""
    line = {"pairs": "{u} {i}", "triplets": "{u} {i} 5", "quadruplets": "{u} {i} 5 {t}",
            "movielens": "{u}\t{i}\t5\t{t}", "ratings-dat": "{u}::{i}::5::{t}",
            "gowalla": "{u}\t2010-10-19T23:55:{s:02d}Z\t30.2\t-97.7\t{i}"}[fmt]
    return [(line.format(u=t % 7 + 1, i=t % 11 + 1, t=1000 + t, s=t % 60) + "\n").encode()
            for t in range(count)]


SANTANDER_HEADER = b"fecha_dato,ncodpers,ind_ahor_fin_ult1,ind_cco_fin_ult1\n"


def santander_lines(count: int) -> list[bytes]:
    return [SANTANDER_HEADER] + [f"2015-0{t % 5 + 1}-28,{t % 7 + 1},{t % 2},1\n".encode()
                                 for t in range(count - 1)]


def with_byte(lines: list[bytes], lineno: int, byte: bytes, at: int = 1) -> bytes:
    broken = list(lines)
    broken[lineno - 1] = broken[lineno - 1][:at] + byte + broken[lineno - 1][at:]
    return b"".join(broken)


@pytest.mark.parametrize("fmt", ["pairs", "triplets", "quadruplets", "movielens", "ratings-dat",
                                 "gowalla", "gowalla.gz", "santander"])
def test_a_byte_that_is_not_utf8_names_its_line(tmp_path, fmt):
    """Issue 24 defect 22: one 0xFF byte on line 101 gave "not a text file (invalid start
    byte)", no line, though the README promises the file and the line."""
    import gzip

    lines = santander_lines(150) if fmt == "santander" else lines_of(fmt.removesuffix(".gz"), 150)
    data = with_byte(lines, 101, b"\xff")
    path = tmp_path / "data.txt"
    path.write_bytes(gzip.compress(data) if fmt.endswith(".gz") else data)
    with pytest.raises(DataError) as info:
        read_interactions(path, fmt.removesuffix(".gz"))
    assert str(info.value) == f"{path}: line 101: not UTF-8 text (byte 2 of the line is 0xff)"
    with pytest.raises(DataError, match=r"line 101: not UTF-8 text"):
        read_interactions(path)  # the format detected


@pytest.mark.parametrize("fmt", ["triplets", "ratings-dat", "gowalla"])
def test_a_nul_byte_in_an_id_names_its_line(tmp_path, fmt):
    """pandas read `2\\x003` as an id of its own: a binary or corrupted file read as data."""
    path = tmp_path / "data.txt"
    path.write_bytes(with_byte(lines_of(fmt, 30), 12, b"\x00"))
    with pytest.raises(DataError, match=r"^\S+data\.txt: line 12: not text \(byte 2 of the line is 0x00\)$"):
        read_interactions(path)


HUGE = "9" * 2_000_000 + "x"  # a field of 2 MB: the message quotes its start and says its length


def huge_at(lines: list[bytes], lineno: int, field: int, sep: bytes) -> bytes:
    broken = list(lines)
    fields = broken[lineno - 1].rstrip(b"\n").split(sep)
    fields[field] = HUGE.encode()
    broken[lineno - 1] = sep.join(fields) + b"\n"
    return b"".join(broken)


def assert_short(message: str, lineno: int) -> None:
    assert len(message) < 400, message[:400]
    assert f"line {lineno}:" in message and "... (2,000,001 characters)" in message


@pytest.mark.parametrize("fmt, field, sep", [("quadruplets", 3, b" "), ("ratings-dat", 3, b"::"),
                                             ("gowalla", 1, b"\t")])
def test_a_huge_field_is_quoted_short_with_its_length(tmp_path, fmt, field, sep):
    """Issue 24 defect 26: a 5 MB field on line 50 gave a 5 MB error line."""
    path = tmp_path / "data.txt"
    path.write_bytes(huge_at(lines_of(fmt, 80), 50, field, sep))
    with pytest.raises(DataError) as info:
        read_interactions(path, fmt)
    assert_short(str(info.value), 50)


@pytest.mark.parametrize("field", [0, 1, 2])  # fecha_dato, ncodpers, a product flag
def test_a_huge_santander_field_is_quoted_short(tmp_path, field):
    path = tmp_path / "train.csv"
    path.write_bytes(huge_at(santander_lines(80), 50, field, b","))
    with pytest.raises(DataError) as info:
        read_interactions(path, "santander")
    assert_short(str(info.value), 50)


def test_a_huge_header_line_is_quoted_short(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text(f"user {HUGE}\n" + "".join(f"{u} {u + 1}\n" for u in range(20)))
    with pytest.raises(DataError, match="looks like a header") as info:
        read_interactions(path)
    assert len(str(info.value)) < 400 and "... (2,000,006 characters)" in str(info.value)


def test_a_huge_user_id_too_short_for_the_split_is_quoted_short(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text(f"{HUGE} 1\n" + "".join(f"u{u} {i}\n" for u in range(5) for i in range(4)))
    with pytest.raises(DataError, match="leave no training item") as info:
        load_split(DataConfig(spec=str(path), format="pairs"))
    assert len(str(info.value)) < 600 and "... (2,000,001 characters)" in str(info.value)


@pytest.mark.parametrize("text, expected", [
    (SANTANDER_HEADER + b"2015-01-28,1,0,1\n", "santander"),
    (b"# c\n1 2\n", "looks like a comment"),
    (b"1::2::3::4\n1::3::3::5\n", "ratings-dat"),
])
def test_a_byte_order_mark_is_not_part_of_the_first_line(tmp_path, text, expected):
    """pandas drops a UTF-8 BOM; the line-reading helpers kept it, so a BOM-led Santander header
    was not recognised and a BOM-led `#` line was taken for a header."""
    path = tmp_path / "data.txt"
    path.write_bytes(b"\xef\xbb\xbf" + text)
    if expected == "looks like a comment":
        with pytest.raises(DataError, match=r"line 1: '# c' looks like a comment"):
            read_interactions(path)
    else:
        assert detect_format(path) == expected and read_interactions(path).num_users == 1
