"""Fetch-once with a digest check, against a real HTTP server on loopback serving fixture files.

Nothing here reaches the internet: every URL is 127.0.0.1, and CASER_MIRROR (the documented way
to fetch the named datasets from elsewhere) points the named datasets at the same server.
"""
from __future__ import annotations

import base64
import gzip
import hashlib
import io
import os
import socket
import threading
import zipfile
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from caser.catalogue import CATALOGUE
from caser.config import DataConfig
from caser.datasets import load_sequences
from caser.downloads import Source, fetch_once
from caser.errors import DataError

RATINGS = b"1::10::5::978300760\n1::11::3::978300761\n2::10::4::978300762\n"
CHECKINS = b"7\t2010-10-19T23:55:27Z\t30.2\t-97.7\t22847\n7\t2010-10-18T22:17:43Z\t30.2\t-97.7\t420315\n"


class Server:
    """A loopback HTTP server over a folder, counting the requests it answers."""

    def __init__(self, root: Path) -> None:
        self.root, self.requests, self.authorizations = root, [], []
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, *args) -> None:
                server.requests.append(self.path)
                server.authorizations.append(self.headers.get("Authorization"))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if self.thread.is_alive():
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join()


@pytest.fixture
def server(tmp_path, monkeypatch):
    """The server; its tests name its URLs themselves, so no mirror stands in for them."""
    monkeypatch.delenv("CASER_MIRROR")
    root = tmp_path / "served"
    root.mkdir()
    running = Server(root)
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """A cache of the test's own, and the named datasets' publishers replaced by a closed port."""
    monkeypatch.setenv("CASER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CASER_MIRROR", f"http://127.0.0.1:{closed_port()}")


def closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def zipped(member: str, data: bytes) -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr(member, data)
    return archive.getvalue()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_verified_zip_member_is_kept_once_and_then_read_from_the_cache(server, tmp_path):
    archive = zipped("ml-1m/ratings.dat", RATINGS)
    (server.root / "ml-1m.zip").write_bytes(archive)
    source = Source(f"{server.url}/ml-1m.zip", digest=sha256(archive), member="ml-1m/ratings.dat")
    folder = tmp_path / "cache" / "ml-1m"
    path = fetch_once(source, folder, "ml-1m")
    assert path == folder / "ratings.dat" and path.read_bytes() == RATINGS
    assert files_in(folder) == ["ratings.dat"]  # the archive and partial files are gone
    server.stop()
    assert fetch_once(source, folder, "ml-1m") == path  # no server: the cache answers
    assert server.requests == ["/ml-1m.zip"]


def test_a_verified_gzip_is_kept_decompressed(server, tmp_path):
    packed = gzip.compress(CHECKINS)
    (server.root / "checkins.txt.gz").write_bytes(packed)
    digest = "md5:" + hashlib.md5(packed).hexdigest()
    source = Source(f"{server.url}/checkins.txt.gz", digest=digest, gunzip=True)
    path = fetch_once(source, tmp_path / "cache" / "gowalla", "gowalla")
    assert path.name == "checkins.txt" and path.read_bytes() == CHECKINS


def test_a_member_digest_checks_the_member_not_the_archive(server, tmp_path):
    (server.root / "ml-100k.zip").write_bytes(zipped("ml-100k/u.data", b"1\t2\t3\t4\n"))
    source = Source(f"{server.url}/ml-100k.zip", digest=sha256(b"1\t2\t3\t4\n"),
                    member="ml-100k/u.data", digest_of="member")
    assert fetch_once(source, tmp_path / "f", "ml-100k").read_bytes() == b"1\t2\t3\t4\n"


def test_a_wrong_digest_is_refused_and_leaves_no_cache_file(server, tmp_path):
    archive = zipped("ml-1m/ratings.dat", RATINGS)
    (server.root / "ml-1m.zip").write_bytes(archive)
    folder = tmp_path / "cache" / "ml-1m"
    source = Source(f"{server.url}/ml-1m.zip", digest=sha256(b"other bytes"), member="ml-1m/ratings.dat")
    with pytest.raises(DataError, match=r"ml-1m: the downloaded ml-1m.zip has sha256 \w{12}\.\.\., "
                                        r"expected \w{12}\.\.\.; download .*ml-1m.zip by hand") as info:
        fetch_once(source, folder, "ml-1m")
    assert "\n" not in str(info.value)
    assert files_in(folder) == []


def test_offline_the_error_says_which_url_to_fetch_and_where_to_put_which_file(tmp_path):
    folder = tmp_path / "cache" / "ml-1m"
    source = CATALOGUE["ml-1m"].source
    with pytest.raises(DataError) as info:
        fetch_once(source, folder, "ml-1m")  # CASER_MIRROR is a closed port
    message = str(info.value)
    assert message.startswith(f"ml-1m: {folder / 'ratings.dat'} is missing and the download failed")
    assert f"download {source.url} by hand and put it in {folder}/ as it is" in message
    assert f"or put its ml-1m/ratings.dat at {folder / 'ratings.dat'}" in message
    assert "\n" not in message and files_in(folder) == []


def test_named_datasets_come_through_the_mirror_and_are_checked_with_their_real_digest(
    server, monkeypatch
):
    (server.root / "ml-1m.zip").write_bytes(zipped("ml-1m/ratings.dat", RATINGS))
    (server.root / "loc-gowalla_totalCheckins.txt.gz").write_bytes(gzip.compress(CHECKINS))
    monkeypatch.setenv("CASER_MIRROR", server.url + "/")
    expected = {"ml-1m": "sha256 .*expected a6898adb50b9", "gowalla": "md5 .*expected 8ebd5ed2dd37"}
    for name, pattern in expected.items():
        with pytest.raises(DataError, match=pattern):
            load_sequences(DataConfig(spec=name))
    assert sorted(server.requests) == ["/loc-gowalla_totalCheckins.txt.gz", "/ml-1m.zip"]


def test_a_mirror_user_and_password_go_as_basic_authentication_not_as_a_host_name(
    server, monkeypatch
):
    """urllib took `bob:pw@127.0.0.1` for the host name: the mirror was never asked."""
    (server.root / "ml-1m.zip").write_bytes(zipped("ml-1m/ratings.dat", RATINGS))
    monkeypatch.setenv("CASER_MIRROR", server.url.replace("//", "//bob:p%40ss@"))
    with pytest.raises(DataError, match="sha256 .*expected a6898adb50b9") as info:
        load_sequences(DataConfig(spec="ml-1m"))
    assert server.requests == ["/ml-1m.zip"]
    assert server.authorizations == ["Basic " + base64.b64encode(b"bob:p@ss").decode()]
    assert "p%40ss" not in str(info.value)


def test_an_archive_put_in_the_cache_by_hand_is_checked_before_use(tmp_path):
    folder = tmp_path / "cache" / "ml-1m"
    folder.mkdir(parents=True)
    archive = zipped("ml-1m/ratings.dat", RATINGS)
    (folder / "ml-1m.zip").write_bytes(archive)
    with pytest.raises(DataError, match=rf"ml-1m: {folder / 'ml-1m.zip'} has sha256"):
        load_sequences(DataConfig(spec="ml-1m"))
    assert files_in(folder) == ["ml-1m.zip"]  # the user's file stays, nothing else is kept
    source = Source("https://example.invalid/ml-1m.zip", digest=sha256(archive), member="ml-1m/ratings.dat")
    assert fetch_once(source, folder, "ml-1m").read_bytes() == RATINGS  # no network needed


def test_a_corrupt_download_is_refused_as_unusable(server, tmp_path):
    (server.root / "ml-1m.zip").write_bytes(b"not a zip at all")
    source = Source(f"{server.url}/ml-1m.zip", digest=sha256(b"not a zip at all"), member="ml-1m/ratings.dat")
    with pytest.raises(DataError, match=r"the downloaded ml-1m.zip is not a usable archive"):
        fetch_once(source, tmp_path / "f", "ml-1m")
    assert files_in(tmp_path / "f") == []


@pytest.mark.parametrize("name", ["ratings.dat", "ml-1m.zip"])
def test_a_directory_in_place_of_the_cached_or_published_file_is_named_as_such(tmp_path, name):
    """Issue 24 defect 21: a directory named ratings.dat gave "ratings.dat is missing"."""
    folder = tmp_path / "cache" / "ml-1m"
    (folder / name).mkdir(parents=True)
    with pytest.raises(DataError) as info:
        load_sequences(DataConfig(spec="ml-1m"))
    assert str(info.value) == (f"ml-1m: {folder / name} is a directory, not a regular file: remove "
                               "it or put the file there (or set CASER_CACHE to another folder)")
    assert (folder / name).is_dir()  # nothing of the user's is removed


def test_a_fifo_in_place_of_the_cached_file_is_named_and_not_opened(tmp_path):
    folder = tmp_path / "cache" / "ml-1m"
    folder.mkdir(parents=True)
    os.mkfifo(folder / "ratings.dat")
    with pytest.raises(DataError, match=r"ratings\.dat is a FIFO \(named pipe\), not a regular file"):
        load_sequences(DataConfig(spec="ml-1m"))


def test_a_file_in_place_of_the_cache_folder_is_named_as_such(tmp_path):
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "ml-1m").write_text("not a folder")
    with pytest.raises(DataError, match=rf"^ml-1m: {tmp_path / 'cache' / 'ml-1m'} is a regular file, "
                                        "not a folder"):
        load_sequences(DataConfig(spec="ml-1m"))


def test_a_member_larger_than_any_dataset_is_refused_before_it_is_unpacked(server, tmp_path, monkeypatch):
    """A member checked by its own digest is unpacked before the check: a small archive that
    unpacks to gigabytes (from a hostile mirror) would fill the memory first."""
    from caser import downloads

    monkeypatch.setattr(downloads, "MAX_MEMBER_BYTES", 1000)
    data = b"1\t2\t3\t4\n" * 200  # 1,600 bytes, compressing to far fewer
    (server.root / "ml-100k.zip").write_bytes(zipped("ml-100k/u.data", data))
    source = Source(f"{server.url}/ml-100k.zip", digest=sha256(data), member="ml-100k/u.data",
                    digest_of="member")
    with pytest.raises(DataError, match=r"ml-100k/u\.data in the downloaded ml-100k\.zip unpacks to "
                                        r"1,600 bytes, more than any dataset here \(1,000\)"):
        fetch_once(source, tmp_path / "f", "ml-100k")
    assert files_in(tmp_path / "f") == []


def test_a_cache_under_an_unknown_users_home_is_one_line(monkeypatch):
    """CASER_CACHE=~nosuchuser/cache raised pathlib's RuntimeError, a traceback."""
    monkeypatch.setenv("CASER_CACHE", "~nosuchuser/cache")
    with pytest.raises(DataError, match=r"^CASER_CACHE=~nosuchuser/cache: cannot expand ~nosuchuser: "
                                        r"no such user, or no home folder$"):
        load_sequences(DataConfig(spec="ml-1m"))
    assert not Path("~nosuchuser").exists()  # not taken as a folder under the current one
