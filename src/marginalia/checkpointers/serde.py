"""The saver's serializer stack: LangGraph's serializer, optionally compressed, optionally encrypted.

Everything the saver stores goes through one :class:`SerializerProtocol` (``dumps_typed`` /
``loads_typed``). Two optional layers wrap LangGraph's ``JsonPlusSerializer``:

* :class:`ZstdSerializer` compresses payloads of at least ``threshold`` bytes and tags their type
  ``<type>|zstd`` (no ``+``, which LangGraph's ``EncryptedSerializer`` reserves for the cipher);
* LangGraph's own :class:`~langgraph.checkpoint.serde.encrypted.EncryptedSerializer` with
  :class:`AesGcmCipher` (AES-256-GCM from ``cryptography``; pycryptodome is not needed).

Compression sits *inside* encryption (ciphertext does not compress). Both are off by default and
switched on by ``MARGINALIA_CHECKPOINT_COMPRESS=zstd`` and ``MARGINALIA_CHECKPOINT_KEY=<base64 key>``.
Reading is tolerant: a stack with a key still reads unencrypted and uncompressed records, so turning
either option on does not strand existing threads (turning encryption *off* does: the key is needed).

An encrypted payload read without a key, or with another key, raises a :class:`CheckpointKeyError`
(:class:`CheckpointKeyMissing` / :class:`CheckpointDecryptionFailed`), never LangGraph's
``NotImplementedError('Unknown serialization type')``; the saver adds the checkpoint object's
``s3://`` URI with :meth:`CheckpointKeyError.at`, so the CLI prints one line that says what to set.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

from langgraph.checkpoint.serde.base import CipherProtocol, SerializerProtocol
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from ..errors import CheckpointError, ConfigurationError
from ..settings import Settings, current

KEY_ENV = "MARGINALIA_CHECKPOINT_KEY"
COMPRESS_ENV = "MARGINALIA_CHECKPOINT_COMPRESS"
ZSTD_TAG = "|zstd"
DEFAULT_COMPRESS_THRESHOLD = 1024  # bytes: smaller payloads are stored as they are
logger = logging.getLogger(__name__)


class CheckpointKeyError(CheckpointError):
    """An encrypted checkpoint cannot be read with the key this process has (or has not)."""

    def at(self, where: str) -> CheckpointKeyError:
        """The same error naming the checkpoint object (``s3://…``) it was raised for."""
        if self.uri is not None:
            return self
        return type(self)(f"{where}: {self}", uri=where)


class CheckpointKeyMissing(CheckpointKeyError):
    """The thread's checkpoints are encrypted and no key is set."""


class CheckpointDecryptionFailed(CheckpointKeyError):
    """A key is set but the payload does not decrypt with it (another key, or tampering)."""


def _loads_plain(serde: SerializerProtocol, data: tuple[str, bytes]) -> Any:
    """``serde.loads_typed`` for a payload that must be neither encrypted nor compressed here.

    A ``+cipher`` tag reaches this point only when no key is set (``EncryptedSerializer`` strips
    it otherwise), so it means "set the key", not "unknown type"."""
    typ = data[0]
    if "+" in typ:
        raise CheckpointKeyMissing(
            f"this thread's checkpoints are encrypted ({typ.split('+', 1)[1]}) and {KEY_ENV} is not set: "
            f"set {KEY_ENV} to the key they were written with"
        )
    try:
        return serde.loads_typed(data)
    except NotImplementedError as exc:  # JsonPlusSerializer's "Unknown serialization type"
        raise CheckpointError(f"checkpoint payload of unknown type {typ!r}: {exc}") from None


class ZstdSerializer(SerializerProtocol):
    """Compress what ``serde`` produces with zstd when it is at least ``threshold`` bytes."""

    def __init__(self, serde: SerializerProtocol, *, threshold: int = DEFAULT_COMPRESS_THRESHOLD, level: int = 3):
        import zstandard

        self.serde = serde
        self.threshold = threshold
        self.level = level
        self._zstd = zstandard
        # A ZstdCompressor must not be used by two threads at once, and LangGraph saves checkpoints
        # and pending writes from background threads concurrently: one compressor per thread.
        self._local = threading.local()

    def _compressor(self):
        compressor = getattr(self._local, "compressor", None)
        if compressor is None:
            compressor = self._local.compressor = self._zstd.ZstdCompressor(level=self.level)
        return compressor

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        typ, data = self.serde.dumps_typed(obj)
        if len(data) < self.threshold:
            return typ, data
        return typ + ZSTD_TAG, self._compressor().compress(data)

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        typ, payload = data
        if typ.endswith(ZSTD_TAG) and "+" not in typ:
            try:
                payload = self._zstd.ZstdDecompressor().decompress(payload)
            except self._zstd.ZstdError as exc:
                raise CheckpointError(f"a compressed checkpoint payload is corrupt: {exc}") from None
            typ = typ[: -len(ZSTD_TAG)]
        return _loads_plain(self.serde, (typ, payload))


class TolerantZstd(SerializerProtocol):
    """Reads ``|zstd`` payloads even when compression is off for writing."""

    def __init__(self, serde: SerializerProtocol):
        self.serde = serde

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        return self.serde.dumps_typed(obj)

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        if data[0].endswith(ZSTD_TAG):
            return ZstdSerializer(self.serde).loads_typed(data)
        return _loads_plain(self.serde, data)


class AesGcmCipher(CipherProtocol):
    """AES-GCM for LangGraph's ``EncryptedSerializer``: a fresh 96-bit nonce per payload."""

    name = "aesgcm"

    def __init__(self, key: bytes):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if len(key) not in (16, 24, 32):
            raise ConfigurationError(f"{KEY_ENV} must decode to 16, 24 or 32 bytes (got {len(key)})")
        self._aead = AESGCM(key)

    def encrypt(self, plaintext: bytes) -> tuple[str, bytes]:
        nonce = os.urandom(12)
        return self.name, nonce + self._aead.encrypt(nonce, plaintext, None)

    def decrypt(self, ciphername: str, ciphertext: bytes) -> bytes:
        from cryptography.exceptions import InvalidTag

        if ciphername != self.name:
            raise CheckpointDecryptionFailed(
                f"checkpoint payload encrypted with cipher {ciphername!r}; Marginalia decrypts only {self.name!r}"
            )
        try:
            return self._aead.decrypt(ciphertext[:12], ciphertext[12:], None)
        except InvalidTag:
            raise CheckpointDecryptionFailed(
                f"this thread's checkpoints are encrypted and decryption failed with the {KEY_ENV} set: "
                "set the key they were written with (or the object was tampered with)"
            ) from None


def decode_key(value: str | bytes) -> bytes:
    """A key given as base64 text (``openssl rand -base64 32``) or raw bytes."""
    if isinstance(value, bytes):
        return value
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(f"{KEY_ENV} is not valid base64 (make one with: openssl rand -base64 32)") from None


def build_serde(
    serde: SerializerProtocol | None = None,
    *,
    key: str | bytes | None = None,
    compress: str | None = None,
    env: Mapping[str, str] | None = None,
) -> SerializerProtocol:
    """The serializer stack from arguments, else from ``MARGINALIA_CHECKPOINT_*``.

    ``key=""``/``compress=""`` switch an option off even when the environment sets it.
    """
    settings = current() if env is None else Settings.from_env(env)
    if key is None:
        key = settings.checkpoint_key.get_secret_value() if settings.checkpoint_key is not None else None
    key = key or None
    compress = (settings.checkpoint_compress if compress is None else compress) or None
    inner = serde or JsonPlusSerializer()
    if compress is None:
        stack: SerializerProtocol = TolerantZstd(inner)
    elif compress == "zstd":
        stack = ZstdSerializer(inner)
    else:
        raise ConfigurationError(f"{COMPRESS_ENV}={compress!r} is not supported: use 'zstd' or leave it unset")
    if key is not None:
        stack = EncryptedSerializer(AesGcmCipher(decode_key(key)), stack)
    return stack


def with_inner(serde: SerializerProtocol, rebuild) -> SerializerProtocol:
    """Apply ``rebuild`` to the innermost serializer of a stack built by :func:`build_serde`."""
    if isinstance(serde, EncryptedSerializer):
        return EncryptedSerializer(serde.cipher, with_inner(serde.serde, rebuild))
    if isinstance(serde, ZstdSerializer):
        return ZstdSerializer(with_inner(serde.serde, rebuild), threshold=serde.threshold)
    if isinstance(serde, TolerantZstd):
        return TolerantZstd(with_inner(serde.serde, rebuild))
    return rebuild(serde)


def with_msgpack_allowlist(serde: SerializerProtocol, extra_allowlist: Any) -> SerializerProtocol:
    """The innermost serializer with ``extra_allowlist`` added to its msgpack allowlist, through the
    public ``JsonPlusSerializer.with_msgpack_allowlist`` (LangGraph's own ``with_allowlist`` uses a
    private helper that only sees one level of ``EncryptedSerializer``, not our zstd layer)."""
    add = getattr(serde, "with_msgpack_allowlist", None)
    if add is None:
        logger.warning("serializer %s has no msgpack allowlist; strict msgpack is not enforced", type(serde).__name__)
        return serde
    return add(extra_allowlist)
