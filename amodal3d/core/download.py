"""Downloading a weights file once: resumable, checksummed, atomic, with a progress bar, and one clear line offline.

A file is fetched into ``DEST.part`` (an interrupted download continues from there with an HTTP Range request),
checked against its published SHA-256 (the whole digest, or the prefix torch hub and segment-anything put in file
names), then renamed to ``DEST``. A ``DEST`` that is already there is a cache hit: no network. A checksum mismatch
keeps nothing. Nothing here is called by the tests against the internet: they serve files from a local HTTP server.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path

from amodal3d.core.errors import UserError

CHUNK = 1 << 20
TIMEOUT_S = 30


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def check_digest(path: Path, sha256: str | None, url: str) -> None:
    """Raise a UserError (and remove ``path``) unless its SHA-256 starts with ``sha256`` (a whole or a prefix)."""
    if not sha256:
        return
    actual = sha256_of(path)
    if not actual.startswith(sha256.lower()):
        path.unlink(missing_ok=True)
        raise UserError(f"checksum mismatch for {url}: expected sha256 {sha256}..., got {actual[:16]}...; the file "
                        "was not kept (a corrupted or substituted download)")


def download(url: str, dest: Path, sha256: str | None = None, progress: bool = True) -> Path:
    """``dest``, downloading ``url`` there first unless it is already present (see the module docstring)."""
    dest = Path(dest)
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            resumed = have > 0 and response.status == 206
            total = _total(response, have if resumed else 0)
            with open(part, "ab" if resumed else "wb") as out:
                _copy(response, out, total, have if resumed else 0, dest.name, progress)
            if total is not None and part.stat().st_size < total:
                raise ConnectionError(f"connection closed at {part.stat().st_size} of {total} bytes")
    except urllib.error.HTTPError as exc:
        if exc.code != 416 or not have:  # 416 with a part file: it is already whole
            raise UserError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from None
    except (TimeoutError, urllib.error.URLError, http.client.HTTPException, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        kept = f"; {part.stat().st_size} bytes kept in {part}, a rerun resumes" if part.is_file() else ""
        raise UserError(f"cannot download {url} ({reason}){kept}. Offline? Fetch it by hand and put it at "
                        f"{dest}") from None
    check_digest(part, sha256, url)
    os.replace(part, dest)
    return dest


def _total(response, already: int) -> int | None:
    length = response.headers.get("Content-Length")
    return already + int(length) if length and length.isdigit() else None


def _copy(response, out, total: int | None, done: int, label: str, progress: bool) -> None:
    from tqdm import tqdm

    with tqdm(total=total, initial=done, unit="B", unit_scale=True, desc=label, disable=not progress) as bar:
        for block in iter(lambda: response.read(CHUNK), b""):
            out.write(block)
            bar.update(len(block))
