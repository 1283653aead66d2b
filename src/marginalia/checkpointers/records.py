"""The two object formats of the saver: a checkpoint *record* and a *writes* object.

Both are one self-contained object (written with one PUT, so S3 makes them appear whole or not at
all): a 4-byte magic, a format version, a small JSON header, then the payloads produced by the
saver's serializer back to back. The header holds only what the saver needs to navigate (ids,
run id, channel names, payload types and sizes); values are only ever the serializer's bytes, so
encryption covers every checkpoint value and metadata.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any

from ..errors import CheckpointError

RECORD_MAGIC = b"MGCK"
WRITES_MAGIC = b"MGWR"
FORMAT_VERSION = 1
_HEAD = struct.Struct(">4sBI")  # magic, version, header length


def frame(magic: bytes, header: dict[str, Any], blobs: list[tuple[str, bytes]]) -> bytes:
    header = {**header, "blobs": [[typ, len(data)] for typ, data in blobs]}
    head = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return b"".join([_HEAD.pack(magic, FORMAT_VERSION, len(head)), head, *(data for _, data in blobs)])


def unframe(body: bytes, magic: bytes, where: str) -> tuple[dict[str, Any], list[tuple[str, bytes]]]:
    if len(body) < _HEAD.size:
        raise CheckpointError(f"{where} is not a checkpoint object (too short)")
    got, version, head_len = _HEAD.unpack_from(body)
    if got != magic:
        raise CheckpointError(f"{where} is not a {magic.decode()} checkpoint object")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{where} has format version {version}; this Marginalia reads {FORMAT_VERSION}")
    start = _HEAD.size
    try:
        header = json.loads(body[start : start + head_len])
        pos = start + head_len
        blobs = []
        for typ, size in header["blobs"]:
            blobs.append((typ, bytes(body[pos : pos + size])))
            pos += size
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{where} is corrupt: {exc}") from None
    if pos != len(body):
        raise CheckpointError(f"{where} is truncated or has trailing bytes")
    return header, blobs


@dataclass(frozen=True, slots=True)
class Record:
    """A stored checkpoint, still serialized (the saver decides when to deserialize)."""

    checkpoint_id: str
    parent_id: str | None
    run_id: str | None
    checkpoint: tuple[str, bytes]
    metadata: tuple[str, bytes]
    #: the thread id and namespace (keys hash long ones, so they are kept here too)
    thread_id: str | None = None
    checkpoint_ns: str | None = None
    #: the ``s3://`` URI it was read from (for error messages); empty for a record being written
    where: str = field(default="", compare=False)

    def encode(self) -> bytes:
        header = {
            "id": self.checkpoint_id,
            "parent": self.parent_id,
            "run_id": self.run_id,
            "thread": self.thread_id,
            "ns": self.checkpoint_ns,
        }
        return frame(RECORD_MAGIC, header, [self.checkpoint, self.metadata])

    @classmethod
    def decode(cls, body: bytes, where: str) -> Record:
        header, blobs = unframe(body, RECORD_MAGIC, where)
        if len(blobs) != 2:
            raise CheckpointError(f"{where} is corrupt: expected 2 payloads, found {len(blobs)}")
        return cls(
            header["id"],
            header.get("parent"),
            header.get("run_id"),
            blobs[0],
            blobs[1],
            header.get("thread"),
            header.get("ns"),
            where,
        )


@dataclass(frozen=True, slots=True)
class StoredWrite:
    idx: int
    channel: str
    value: tuple[str, bytes]


@dataclass(frozen=True, slots=True)
class WritesObject:
    """The writes of one ``put_writes`` call (or the merged regular writes of one task)."""

    task_id: str
    task_path: str
    writes: tuple[StoredWrite, ...]
    #: the ``s3://`` URI it was read from (for error messages); empty for writes being stored
    where: str = field(default="", compare=False)

    def encode(self) -> bytes:
        header = {
            "task_id": self.task_id,
            "task_path": self.task_path,
            "writes": [[w.idx, w.channel] for w in self.writes],
        }
        return frame(WRITES_MAGIC, header, [w.value for w in self.writes])

    @classmethod
    def decode(cls, body: bytes, where: str) -> WritesObject:
        header, blobs = unframe(body, WRITES_MAGIC, where)
        entries = header.get("writes") or []
        if len(entries) != len(blobs):
            raise CheckpointError(f"{where} is corrupt: {len(entries)} writes but {len(blobs)} payloads")
        writes = tuple(StoredWrite(int(idx), str(ch), blob) for (idx, ch), blob in zip(entries, blobs, strict=True))
        return cls(str(header["task_id"]), str(header.get("task_path") or ""), writes, where)
