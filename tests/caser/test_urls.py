"""A URL's password never reaches a message: `redact_url` hides it in every spelling a URL can
carry it, and `python -m caser.train` offline prints the mirror URL redacted."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from caser.urls import redact_url, split_credentials
from tests.caser.test_downloads import closed_port
from tests.helpers import ROOT


def test_an_offline_run_through_a_mirror_with_a_password_prints_the_url_redacted(tmp_path):
    """Issue 24 defect 3: the download error printed `http://bob:pw@...` in clear."""
    env = {**os.environ, "CASER_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1",
           "CASER_MIRROR": f"http://bob:pw@127.0.0.1:{closed_port()}/mirror"}
    run = subprocess.run([sys.executable, "-m", "caser.train", "--data", "ml-1m"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    output = run.stdout + run.stderr
    assert run.returncode != 0
    assert "pw" not in output and "bob:***@127.0.0.1" in output
    assert run.stdout == "" and len(run.stderr.strip().splitlines()) == 1
    assert "Connection refused" in run.stderr  # the credentials left the host part: a real attempt


@pytest.mark.parametrize("url, shown", [
    ("http://bob:pw@127.0.0.1:9/mirror", "http://bob:***@127.0.0.1:9/mirror"),
    ("postgresql://me:secret@db/optuna", "postgresql://me:***@db/optuna"),
    ("postgresql://me:se/cr@et@db:5432/optuna", "postgresql://me:***@db:5432/optuna"),
    ("https://me:p%40ss@host/x?y=1", "https://me:***@host/x?y=1"),
    ("postgresql://db/optuna?user=me&password=secret&sslmode=require",
     "postgresql://db/optuna?user=me&password=***&sslmode=require"),
    ("https://me:@host/x", "https://me:***@host/x"),
    ("http://host:8080/a/b", "http://host:8080/a/b"),
    ("postgresql://me@db/optuna", "postgresql://me@db/optuna"),
    ("sqlite:///runs/default.db", "sqlite:///runs/default.db"),
    ("runs/x.journal", "runs/x.journal"),
])
def test_redact_url_hides_the_password_and_keeps_the_rest(url, shown):
    assert redact_url(url) == shown


def test_split_credentials_takes_the_user_and_password_out_of_the_host_part():
    assert split_credentials("http://bob:p%40ss@127.0.0.1:9/m/x.zip") == (
        "http://127.0.0.1:9/m/x.zip", "bob", "p@ss")
    assert split_credentials("file:///srv/mirror/x.zip") == ("file:///srv/mirror/x.zip", None, None)
