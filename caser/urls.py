"""Passwords out of URLs: hidden in every URL the project prints, and taken out of the host part
before a request is made.

    from caser.urls import redact_url, split_credentials
    redact_url("http://bob:pw@host/mirror")        # 'http://bob:***@host/mirror'
    split_credentials("http://bob:pw@host/x.zip")  # ('http://host/x.zip', 'bob', 'pw')

Why one home: a download mirror (`CASER_MIRROR`) and a study storage (`--storage`) both take URLs
that may hold a password, and both end up in error lines, progress lines and reports. Every
message goes through `redact_url`; `search.storage.redact` delegates here, since caser/ cannot
import search/.

Redaction errs on the side of hiding: parsers disagree on where a password ends (SQLAlchemy lets
it hold '/', urllib takes the last '@' of the host part), so the password hidden runs from the
first ':' after the user name to the last '@' before the host part ends, whichever parser reads
the URL. A query's `password=`, `passwd=` or `pwd=` value is hidden too (PostgreSQL takes one
there). A user name alone is kept: it says which account, and is no secret.
"""
from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit, urlunsplit

HIDDEN = "***"
_USER_THEN_COLON = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://[^:/?#@]*:")
_QUERY_SECRET = re.compile(r"([?&;](?:password|passwd|pwd)=)[^&;#]*", re.IGNORECASE)
_HOST_END = re.compile(r"[/?#]")


def redact_url(url: str) -> str:
    """`url` with any password replaced by *** (`user:***@host`); other text is unchanged."""
    start = _USER_THEN_COLON.match(url)
    if start is not None:
        end = _password_end(url, start.end())
        if end is not None:
            url = f"{url[: start.end()]}{HIDDEN}{url[end:]}"
    return _QUERY_SECRET.sub(rf"\g<1>{HIDDEN}", url)


def _password_end(url: str, start: int) -> int | None:
    """Where the '@' closing a password that begins at `start` is: after the first '@', the
    last one before the host part ends ('/', '?', '#' or the end). None without an '@'."""
    first = url.find("@", start)
    if first < 0:
        return None
    host_end = _HOST_END.search(url, first)
    return url.rfind("@", first, host_end.start() if host_end else len(url))


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """(the URL without `user:password@`, the user, the password), both percent-decoded; a URL
    without them comes back as it is with (None, None). urllib would take `user:pw@` for part
    of the host name, and its error would then print the password."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None, None
    host = parts.netloc.rpartition("@")[2]
    password = None if parts.password is None else unquote(parts.password)
    return urlunsplit(parts._replace(netloc=host)), unquote(parts.username or ""), password
