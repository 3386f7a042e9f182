"""Fetch a published data file once into the cache, checked against its published digest.

    from caser.downloads import Source, fetch_once
    ml1m = Source("https://files.grouplens.org/datasets/movielens/ml-1m.zip",
                  digest="sha256:a6898a...", member="ml-1m/ratings.dat")
    path = fetch_once(ml1m, cache / "ml-1m", "ml-1m")     # cache/ml-1m/ratings.dat

The cache keeps the file a reader reads: the zip member when `member` is set, else the
published file as it is. A file already there is used as it is (it was checked when it came).
Otherwise the published file is taken from the cache folder when someone put it there by hand,
or downloaded; either way its digest is checked before anything is kept, and the kept file
appears atomically (written beside its place, then renamed), so a crash, a refused digest or
two workers fetching at once never leave a partial file under the cached name. Offline, the
DataError says which URL to fetch by hand and where to put which file.

Environment:
- CASER_CACHE: the cache folder (default `~/.cache/caser-sweep`), one subfolder per dataset.
- CASER_MIRROR: a base URL (http, https or file) standing in for every publisher: the file
  is fetched from `$CASER_MIRROR/<its published file name>`. For a local mirror on a machine
  without internet, and for the tests, which serve fixture files from a loopback server. A
  `user:password@` in it is sent as HTTP basic authentication and printed as `user:***@`.
"""
from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import os
import shutil
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

from caser.errors import DataError
from caser.paths import expand_user, not_a_regular_file
from caser.urls import redact_url, split_credentials

DOWNLOAD_TIMEOUT_S = 20
MAX_MEMBER_BYTES = 1 << 30  # ml-1m's ratings.dat is 24 MB: a larger member is not a dataset here
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Source:
    """Where a dataset is published and how its bytes are checked.

    digest: "<hashlib algorithm>:<hex>" of the published file, or of the extracted member when
    `digest_of` is "member" (what the publisher or a trusted registry gives).
    member: the zip member the cache keeps. gunzip: the cache keeps the published gzip file
    decompressed (read at the speed of plain text, every time the data is loaded). Neither:
    the cache keeps the published file itself.
    """

    url: str
    digest: str
    member: str | None = None
    digest_of: str = "download"
    gunzip: bool = False

    def __post_init__(self) -> None:
        algorithm, _, hexdigest = self.digest.partition(":")
        if algorithm not in hashlib.algorithms_available or not hexdigest:
            raise ValueError(f"digest must be '<algorithm>:<hex>', got {self.digest!r}")
        if self.digest_of not in ("download", "member") or (self.digest_of == "member" and not self.member):
            raise ValueError(
                f"digest_of must be 'download', or 'member' with a member, got {self.digest_of!r}"
            )

    @property
    def published_name(self) -> str:
        return PurePosixPath(self.url).name

    @property
    def cached_name(self) -> str:
        if self.member:
            return PurePosixPath(self.member).name
        return self.published_name.removesuffix(".gz") if self.gunzip else self.published_name


def default_cache_dir() -> Path:
    """`$CASER_CACHE` if set, else `~/.cache/caser-sweep`."""
    env = os.environ.get("CASER_CACHE")
    if env:
        return expand_user(env, f"CASER_CACHE={env}")
    return expand_user("~/.cache/caser-sweep", "the default cache folder")


def source_url(source: Source) -> str:
    """The URL fetched: the publisher's, or the same file name under `$CASER_MIRROR`."""
    mirror = os.environ.get("CASER_MIRROR")
    return f"{mirror.rstrip('/')}/{source.published_name}" if mirror else source.url


def fetch_once(source: Source, folder: Path, label: str) -> Path:
    """The cached file of `source` in `folder`, fetched and checked first if missing (module doc)."""
    folder = Path(folder)
    target = folder / source.cached_name
    published = folder / source.published_name
    _check_places(folder, (target, published), label)
    if target.is_file():
        return target
    by_hand = _by_hand(source, folder, target)
    if published.is_file():  # put there by hand: checked and unpacked as a download would be
        _keep(published, source, target, label, f"{published}", by_hand)
        return target
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"{label}: cannot create the cache folder {folder} ({err})") from None
    partial = folder / f".{source.published_name}.{os.getpid()}.part"
    try:
        url = source_url(source)
        try:
            _download(url, partial)
        except (OSError, ValueError, http.client.HTTPException) as err:  # URLError is an OSError
            reason = " ".join(str(getattr(err, "reason", err)).split())
            raise DataError(
                f"{label}: {target} is missing and the download failed ({reason}; "
                f"{redact_url(url)}); {by_hand}"
            ) from None
        _keep(partial, source, target, label, f"the downloaded {source.published_name}", by_hand)
    finally:
        partial.unlink(missing_ok=True)
    return target


def _check_places(folder: Path, files: tuple[Path, ...], label: str) -> None:
    """Refuse, naming it, a cache folder that is not a folder and a cached or published file
    that is not a regular file (a directory, a FIFO): taken for missing, it read as a failed
    download, and a FIFO would block whoever opened it."""
    if folder.exists() and not folder.is_dir():
        kind = not_a_regular_file(folder) or "a regular file"
        raise DataError(f"{label}: {folder} is {kind}, not a folder: move it away (or set "
                        "CASER_CACHE to another folder)")
    for path in files:
        odd = not_a_regular_file(path)
        if odd is not None:
            raise DataError(f"{label}: {path} is {odd}, not a regular file: remove it or put the "
                            "file there (or set CASER_CACHE to another folder)")


def _by_hand(source: Source, folder: Path, target: Path) -> str:
    holding = f"(or set CASER_CACHE to a folder holding {folder.name}/{target.name})"
    if source.member:
        return (f"download {source.url} by hand and put it in {folder}/ as it is, or put its "
                f"{source.member} at {target} {holding}")
    if source.gunzip:
        return (f"download {source.url} by hand and put it in {folder}/ as it is, or put it "
                f"gunzipped at {target} {holding}")
    return f"download {source.url} by hand and put it at {target} as it is {holding}"


def _download(url: str, partial: Path) -> None:
    with urllib.request.urlopen(_request(url), timeout=DOWNLOAD_TIMEOUT_S) as response, \
            open(partial, "wb") as out:
        while chunk := response.read(_CHUNK):
            out.write(chunk)


def _request(url: str) -> urllib.request.Request:
    """The request for `url`, a `user:password@` in it sent as HTTP basic authentication (urllib
    would read it as part of the host name). Not forwarded on a redirect: another host would
    receive the password."""
    plain, user, password = split_credentials(url)
    request = urllib.request.Request(plain)
    if user is not None:
        token = base64.b64encode(f"{user}:{password or ''}".encode()).decode("ascii")
        request.add_unredirected_header("Authorization", f"Basic {token}")
    return request


def _keep(published: Path, source: Source, target: Path, label: str, what: str, by_hand: str) -> None:
    """Check `published` (or its member) against the digest, then store the cached file."""
    if source.digest_of == "download":
        _check(_file_digest(published, source.digest), source.digest, label, what, by_hand)
    if source.gunzip:
        _store(label, target, lambda partial: _gunzip(published, partial, label, what, by_hand))
        return
    if source.member is None:  # a downloaded file that is the cached one: rename it into place
        _store(label, target, lambda partial: os.replace(published, partial))
        return
    try:
        with zipfile.ZipFile(published) as archive:
            size = archive.getinfo(source.member).file_size  # zipfile reads no more than this
            if size > MAX_MEMBER_BYTES:  # a member checked after unpacking: bound it first
                raise DataError(f"{label}: {source.member} in {what} unpacks to {size:,} bytes, "
                                f"more than any dataset here ({MAX_MEMBER_BYTES:,}); {by_hand}")
            data = archive.read(source.member)
    except (zipfile.BadZipFile, KeyError, OSError) as err:
        raise DataError(f"{label}: {what} is not a usable archive ({err}); {by_hand}") from None
    if source.digest_of == "member":
        algorithm = source.digest.partition(":")[0]
        found = f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"
        _check(found, source.digest, label, f"{source.member} in {what}", by_hand)
    _store(label, target, lambda partial: partial.write_bytes(data))


def _gunzip(published: Path, partial: Path, label: str, what: str, by_hand: str) -> None:
    try:
        with gzip.open(published, "rb") as packed, open(partial, "wb") as out:
            shutil.copyfileobj(packed, out, _CHUNK)
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise DataError(f"{label}: {what} is not a usable gzip file ({err}); {by_hand}") from None


def _file_digest(path: Path, digest: str) -> str:
    algorithm = digest.partition(":")[0]
    hasher = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            hasher.update(chunk)
    return f"{algorithm}:{hasher.hexdigest()}"


def _check(found: str, expected: str, label: str, what: str, by_hand: str) -> None:
    if found.lower() != expected.lower():
        algorithm, _, want = expected.partition(":")
        got = found.partition(":")[2]
        raise DataError(f"{label}: {what} has {algorithm} {got[:12]}..., expected {want[:12]}...; "
                        f"{by_hand}")


def _store(label: str, target: Path, write: Callable[[Path], object]) -> None:
    """Write through a file beside `target`, then rename: the cached name is whole or absent."""
    partial = target.with_name(f".{target.name}.{os.getpid()}.keep")
    try:
        write(partial)
        partial.replace(target)
    except OSError as err:
        raise DataError(f"{label}: cannot write the cache file {target} ({err})") from None
    finally:
        partial.unlink(missing_ok=True)
