"""Where each checkpoint object lives: the key layout of :class:`~marginalia.checkpointers.S3Saver`.

One directory per thread and namespace, one *group* per checkpoint id, the groups sorting
newest-first because the id is inverted (``invert_id``)::

    {root}{thread}/{ns}/b/{inv(id)}/c               a chain *start*: the record of a checkpoint whose
                                                    parent the saver did not know as the head (a fork,
                                                    or a root written without reading the thread)
    {root}{thread}/{ns}/b/{gen}/r                   the thread's root, claimed with If-None-Match by
                                                    the writer that read the namespace as empty; gen is
                                                    ``~`` or inv(newest tombstone) after a delete
    {root}{thread}/{ns}/{inv(id)}/n                 the record of the checkpoint that continued
                                                    ``id``: one slot per parent, written with
                                                    If-None-Match, so two writers advancing the
                                                    same head collide here; 0 bytes = tombstone
    {root}{thread}/{ns}/{inv(id)}/w/{task}/r        regular pending writes of task on ``id``
    {root}{thread}/{ns}/{inv(id)}/w/{task}/s{stamp} a put_writes call with special writes

The starts area (``b/``) sorts before every group, so the first LIST page tells whether a namespace
is one chain (one start: the newest continuation is the latest checkpoint) or forked (several).

``thread``, ``ns`` and task ids are percent-encoded (``/``, ``%``, ``.``, spaces and non-ASCII become
``%XX``), so any thread id or nested namespace (``a:1|b:2``) is one key segment and can never
make a ``.``/``..`` segment. A segment longer than ``HASH_ABOVE`` bytes is replaced by ``%~`` and a
SHA-256 of the value (no encoded value starts with ``%~``): thread ids of thousands of characters and
namespaces of deeply nested subgraphs fit S3's 1,024-byte keys; records carry the thread id and
namespace in their header, so nothing is lost. The root namespace is ``-``; others are ``n`` +
encoding. Nothing needs their sort order; only checkpoint ids must sort (``invert_id``).
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import dataclass
from urllib.parse import quote, unquote

from ..errors import InvalidInput
from ..uri import MAX_KEY_BYTES

ROOT_NS_SEGMENT = "-"
CHILD_NS_MARK = "n"
STARTS = "b"  # the area of chain starts, sorted before every group of a namespace
RECORD = "c"  # a chain start's record (a fork, or a root written without reading the thread)
ROOT = "r"  # the root claimed by the writer that read the namespace as empty
FIRST_GEN = "~"  # the root slot's generation before any delete
NEXT = "n"  # record of the continuation of this group's checkpoint, or a 0-byte tombstone
WRITES = "w"
REGULAR = "r"
SPECIAL = "s"

_SAFE = "-_~:!*'()@,;=+$"  # readable characters that are safe in any key segment ('.' is not)

# Checkpoint ids are uuid6/uuid5 strings (36 characters, lowercase hex and '-'). Each character maps
# to one of a reversed alphabet so that ascending key order is descending id order, with no length
# change. Any other id takes the general form below; those sort after (as older than) all UUIDs.
_ID_IN = "-0123456789abcdef"
_ID_OUT = "zyxwvutsrqponmlkj"
_INVERT = str.maketrans(_ID_IN, _ID_OUT)
_REVERT = str.maketrans(_ID_OUT, _ID_IN)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_FALLBACK = "~"  # ids outside the alphabet: '~' + hex of (255 - byte) + '~'; they sort after (older)


HASH_ABOVE = 160  # bytes: a longer encoded segment is replaced by its hash
HASHED = "%~"  # marks a hashed segment (an encoded value never starts with it: '%' is always '%25')


def encode_segment(value: str) -> str:
    """Percent-encode ``value`` into one key segment (no '/', no '.', never empty); hash it if long."""
    if not isinstance(value, str):
        raise InvalidInput(f"checkpoint thread ids and namespaces must be strings, got {type(value).__name__}")
    encoded = quote(value, safe=_SAFE).replace(".", "%2E") or "%"
    if len(encoded) > HASH_ABOVE:
        return HASHED + hashlib.sha256(value.encode("utf-8")).hexdigest()
    return encoded


def decode_segment(segment: str) -> str | None:
    """The value of a segment, or ``None`` for a hashed one (the record header has it)."""
    if segment.startswith(HASHED):
        return None
    return "" if segment == "%" else unquote(segment)


def invert_id(checkpoint_id: str) -> str:
    """A string whose ascending order is the descending order of checkpoint ids."""
    if _UUID.fullmatch(checkpoint_id):
        return checkpoint_id.translate(_INVERT)
    data = checkpoint_id.encode("utf-8")
    return _FALLBACK + "".join(f"{255 - b:02x}" for b in data) + _FALLBACK


def revert_id(inverted: str) -> str:
    if inverted.startswith(_FALLBACK):
        hexpart = inverted[1:-1]
        return bytes(255 - int(hexpart[i : i + 2], 16) for i in range(0, len(hexpart), 2)).decode("utf-8")
    return inverted.translate(_REVERT)


def write_stamp() -> str:
    """A time-sortable, unique suffix for special-write objects (later stamp = later call)."""
    return f"{time.time_ns():020d}{os.urandom(3).hex()}"


@dataclass(frozen=True, slots=True)
class Layout:
    """Key arithmetic for one saver root (``prefix/`` inside a bucket)."""

    bucket: str
    root: str  # "" or ends with "/"

    def thread_prefix(self, thread_id: str) -> str:
        return f"{self.root}{encode_segment(str(thread_id))}/"

    def ns_prefix(self, thread_id: str, checkpoint_ns: str) -> str:
        seg = ROOT_NS_SEGMENT if not checkpoint_ns else CHILD_NS_MARK + encode_segment(checkpoint_ns)
        return f"{self.thread_prefix(thread_id)}{seg}/"

    def group_prefix(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> str:
        return f"{self.ns_prefix(thread_id, checkpoint_ns)}{invert_id(checkpoint_id)}/"

    def starts_prefix(self, thread_id: str, checkpoint_ns: str) -> str:
        return f"{self.ns_prefix(thread_id, checkpoint_ns)}{STARTS}/"

    def start_key(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> str:
        return self._checked(f"{self.starts_prefix(thread_id, checkpoint_ns)}{invert_id(checkpoint_id)}/{RECORD}")

    def root_key(self, thread_id: str, checkpoint_ns: str, after_tombstone: str | None) -> str:
        gen = invert_id(after_tombstone) if after_tombstone else FIRST_GEN
        return self._checked(f"{self.starts_prefix(thread_id, checkpoint_ns)}{gen}/{ROOT}")

    def next_key(self, thread_id: str, checkpoint_ns: str, parent_id: str) -> str:
        return self._checked(self.group_prefix(thread_id, checkpoint_ns, parent_id) + NEXT)

    def writes_key(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str, task_id: str, kind: str) -> str:
        group = self.group_prefix(thread_id, checkpoint_ns, checkpoint_id)
        return self._checked(f"{group}{WRITES}/{encode_segment(task_id)}/{kind}")

    def parse(self, key: str) -> ParsedKey | None:
        """Split a key under ``root`` into its parts; ``None`` for keys that are not ours."""
        if not key.startswith(self.root):
            return None
        parts = key[len(self.root) :].split("/")
        if len(parts) < 4:
            return None
        thread_seg, ns_seg = parts[0], parts[1]
        ns: str | None
        if ns_seg == ROOT_NS_SEGMENT:
            ns = ""
        elif ns_seg.startswith(CHILD_NS_MARK):
            ns = decode_segment(ns_seg[1:])
        else:
            return None
        start = parts[2] == STARTS
        if start:
            if len(parts) != 5 or parts[4] not in (RECORD, ROOT):
                return None
            group, kind = parts[3], parts[4]
        else:
            group, kind = parts[2], parts[3]
            if kind not in (NEXT, WRITES):
                return None
        try:
            checkpoint_id = "" if group == FIRST_GEN else revert_id(group)
        except (ValueError, UnicodeDecodeError):
            return None
        task_id = decode_segment(parts[4]) if kind == WRITES and len(parts) >= 6 else None
        write_kind = parts[5] if kind == WRITES and len(parts) >= 6 else None
        if kind == WRITES and write_kind is None:
            return None
        return ParsedKey(
            key=key,
            thread_id=decode_segment(thread_seg),
            checkpoint_ns=ns,
            ns_prefix=f"{self.root}{thread_seg}/{ns_seg}/",
            group=group,
            checkpoint_id=checkpoint_id,
            kind=kind,
            start=start,
            task_id=task_id,
            write_kind=write_kind,
        )

    def _checked(self, key: str) -> str:
        if len(key.encode("utf-8")) > MAX_KEY_BYTES:
            raise InvalidInput(
                f"checkpoint key s3://{self.bucket}/{key[:60]}... is {len(key.encode('utf-8'))} bytes, over S3's "
                f"limit of {MAX_KEY_BYTES} bytes: use a shorter saver prefix (long thread ids, namespaces and "
                "task ids are hashed already)"
            )
        return key


@dataclass(frozen=True, slots=True)
class ParsedKey:
    key: str
    thread_id: str | None  # None when the segment is hashed (the record header has it)
    checkpoint_ns: str | None
    ns_prefix: str
    group: str  # inverted checkpoint id (for ROOT: of the generation's tombstone, or FIRST_GEN)
    checkpoint_id: str  # RECORD: its id; NEXT: the parent's; ROOT: the tombstone's ("" for the first)
    kind: str  # RECORD, ROOT, NEXT or WRITES
    start: bool = False  # in the starts area
    task_id: str | None = None
    write_kind: str | None = None  # "r" or "s<stamp>"
