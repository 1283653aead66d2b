"""Where each checkpoint object lives: the key layout of :class:`~marginalia.checkpointers.S3Saver`.

One directory per thread and namespace, one *group* per checkpoint id, the groups sorting
newest-first because the id is inverted (``invert_id``)::

    {root}{thread}/{ns}/{inv(id)}/c                 the record of a checkpoint with no parent
                                                    the saver continued (a root or a fork)
    {root}{thread}/{ns}/{inv(id)}/n                 the record of the checkpoint that continued
                                                    ``id``: one slot per parent, written with
                                                    If-None-Match, so two writers advancing the
                                                    same head collide here; 0 bytes = tombstone
    {root}{thread}/{ns}/{inv(id)}/w/{task}/r        regular pending writes of task on ``id``
    {root}{thread}/{ns}/{inv(id)}/w/{task}/s{stamp} a put_writes call with special writes

``thread`` and ``ns`` are percent-encoded (``/``, ``%``, ``.``, spaces and non-ASCII become
``%XX``), so any thread id or nested namespace (``a:1|b:2``) is one key segment and can never
make a ``.``/``..`` segment. The root namespace is ``-``; others are ``n`` + encoding. Nothing
needs their sort order; only checkpoint ids must sort, and they do through ``invert_id``.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from urllib.parse import quote, unquote

from ..errors import InvalidInput
from ..uri import MAX_KEY_BYTES

ROOT_NS_SEGMENT = "-"
CHILD_NS_MARK = "n"
RECORD = "c"  # own record (root checkpoint or fork)
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


def encode_segment(value: str) -> str:
    """Percent-encode ``value`` into one key segment (no '/', no '.', never empty)."""
    if not isinstance(value, str):
        raise InvalidInput(f"checkpoint thread ids and namespaces must be strings, got {type(value).__name__}")
    return quote(value, safe=_SAFE).replace(".", "%2E") or "%"


def decode_segment(segment: str) -> str:
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

    def record_key(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> str:
        return self._checked(self.group_prefix(thread_id, checkpoint_ns, checkpoint_id) + RECORD)

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
        thread_seg, ns_seg, group, kind = parts[0], parts[1], parts[2], parts[3]
        if ns_seg == ROOT_NS_SEGMENT:
            ns = ""
        elif ns_seg.startswith(CHILD_NS_MARK):
            ns = decode_segment(ns_seg[1:])
        else:
            return None
        try:
            checkpoint_id = revert_id(group)
        except (ValueError, UnicodeDecodeError):
            return None
        task_id = decode_segment(parts[4]) if kind == WRITES and len(parts) >= 6 else None
        write_kind = parts[5] if kind == WRITES and len(parts) >= 6 else None
        if kind not in (RECORD, NEXT, WRITES) or (kind == WRITES and task_id is None):
            return None
        return ParsedKey(
            key=key,
            thread_id=decode_segment(thread_seg),
            checkpoint_ns=ns,
            ns_prefix=f"{self.root}{thread_seg}/{ns_seg}/",
            group=group,
            checkpoint_id=checkpoint_id,
            kind=kind,
            task_id=task_id,
            write_kind=write_kind,
        )

    def _checked(self, key: str) -> str:
        if len(key.encode("utf-8")) > MAX_KEY_BYTES:
            raise InvalidInput(
                f"checkpoint key s3://{self.bucket}/{key[:60]}... is longer than S3's {MAX_KEY_BYTES} bytes: "
                "use a shorter thread id, namespace or task id"
            )
        return key


@dataclass(frozen=True, slots=True)
class ParsedKey:
    key: str
    thread_id: str
    checkpoint_ns: str
    ns_prefix: str
    group: str  # inverted checkpoint id
    checkpoint_id: str  # the group's checkpoint id (for NEXT: the parent of the record inside)
    kind: str  # RECORD, NEXT or WRITES
    task_id: str | None = None
    write_kind: str | None = None  # "r" or "s<stamp>"
