"""The blob files of a local store: ``blobs/<2 hex>/<32 hex>``, one immutable file per object version.

A body is streamed to a temp file next to its final place, fsynced, then ``os.replace``-d under a
fresh random name; a copy is a hard link. Beside each blob, :mod:`.sidecars` keeps what the
catalogue knows of it. Which blobs are live is the catalogue's business
(:class:`~marginalia.storage.local.LocalStore`); this module only writes, links and removes files.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from ..errors import InvalidInput
from . import catalogue, rules, sidecars
from .base import Body

__all__ = ["CHUNK_SIZE", "ORPHAN_MAX_AGE_SECONDS", "BlobFiles", "body_chunks", "fsync_dir"]

CHUNK_SIZE = 1024 * 1024
ORPHAN_MAX_AGE_SECONDS = 3600.0


def fsync_dir(path: Path) -> None:
    """Make a rename durable (POSIX); harmless no-op where directories cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def body_chunks(body: Body, uri: str) -> Iterator[bytes]:
    """Yield the body in chunks of at most CHUNK_SIZE, never holding a whole file in memory."""
    if isinstance(body, (bytes, bytearray, memoryview)):
        view = memoryview(body).cast("B")
        for start in range(0, len(view), CHUNK_SIZE):
            yield bytes(view[start : start + CHUNK_SIZE])
        return
    if isinstance(body, Path):
        try:
            f = body.open("rb")
        except FileNotFoundError:
            raise InvalidInput(f"cannot upload to {uri}: file {str(body)!r} does not exist") from None
        except OSError as exc:  # a directory, no permission, ...
            raise InvalidInput(f"cannot upload {str(body)!r} to {uri}: {exc.strerror}") from None
        with f:
            yield from body_chunks(f, uri)
        return
    if hasattr(body, "read"):
        while chunk := body.read(CHUNK_SIZE):
            if isinstance(chunk, str):
                raise InvalidInput(f"cannot upload to {uri}: the file object is open in text mode; open it with 'rb'")
            yield bytes(chunk)
        return
    raise InvalidInput(
        f"cannot upload to {uri}: body must be bytes, a binary file object or a Path, not {type(body).__name__}"
    )


class BlobFiles:
    """The ``blobs`` directory of the local store at ``store_root`` (``durable``: fsync every write)."""

    def __init__(self, store_root: Path, *, durable: bool = True):
        self.store_root = store_root
        self.root = store_root / "blobs"
        self.durable = durable

    def path(self, name: str) -> Path:
        return self.root / name

    @staticmethod
    def new_name() -> str:
        hex_id = uuid.uuid4().hex
        return f"{hex_id[:2]}/{hex_id}"

    @contextlib.contextmanager
    def _disk_full_translated(self) -> Iterator[None]:
        """A full disk as the store's one-line :class:`~marginalia.errors.StoreUnusable` error."""
        try:
            yield
        except OSError as exc:
            if catalogue.is_disk_full(exc):
                raise catalogue.disk_full(str(self.store_root)) from None
            raise

    def write(self, body: Body, uri: str) -> tuple[str, int, str]:
        """Stream ``body`` into a new immutable blob; return (name, size, quoted md5 ETag)."""
        name = self.new_name()
        final = self.path(name)
        with self._disk_full_translated():
            final.parent.mkdir(exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=".tmp-")
        md5 = hashlib.md5()
        size = 0
        try:
            with self._disk_full_translated(), os.fdopen(fd, "wb") as f:
                for chunk in body_chunks(body, uri):
                    f.write(chunk)
                    md5.update(chunk)
                    size += len(chunk)
                f.flush()
                if self.durable:
                    os.fsync(f.fileno())
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        if self.durable:
            fsync_dir(final.parent)
        return name, size, rules.quote_etag(md5.hexdigest())

    def link(self, source: str) -> str:
        """A new name for an existing blob's content (hard link; a copy where links are impossible)."""
        name = self.new_name()
        target = self.path(name)
        target.parent.mkdir(exist_ok=True)
        try:
            os.link(self.path(source), target)
        except OSError:
            tmp = target.with_name(f".tmp-{target.name}")
            shutil.copyfile(self.path(source), tmp)
            os.replace(tmp, target)
        if self.durable:
            fsync_dir(target.parent)
        return name

    def unlink(self, names: Iterable[str]) -> None:
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                self.path(name).unlink()
            sidecars.remove_all(self.path(name))

    def remove_orphans(self, older_than: float, referenced: Callable[[], set[str]]) -> int:
        """Remove blob files (and temp files) older than ``older_than`` s whose name is not in
        ``referenced()`` (called after the scan, so a blob written meanwhile is too young to go)."""
        cutoff = time.time() - older_than
        candidates = []
        for path in self.root.glob("*/*"):  # blobs and temp files; sidecars go with their blob
            if not (catalogue.BLOB_NAME.match(f"{path.parent.name}/{path.name}") or path.name.startswith(".tmp-")):
                continue
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime <= cutoff:
                    candidates.append(path)
        live = referenced()
        removed = 0
        for path in candidates:
            if f"{path.parent.name}/{path.name}" not in live:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed += 1
                sidecars.remove_all(path)
        return removed
