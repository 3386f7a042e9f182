"""Odd files given as data: what is not a regular file is refused before anything opens it (a
FIFO would block, a device never ends), in one line saying what it is."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from caser.config import DataConfig
from caser.datasets import load_sequences
from caser.errors import DataError
from caser.readers import read_interactions
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
