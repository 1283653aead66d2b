"""The shared validator and parity rules of S3 Annotations (spec R4, R6, R7, R9, R13, R14, R20.2).

Both backends (:mod:`.local`, :mod:`.s3`) and the S3 test server call these functions *before*
touching any state, so bad input raises the same :mod:`marginalia.errors` exception everywhere,
with a message that names ``s3://bucket/key``, the annotation name and the rule broken.

Checksums: a default boto3 client sends CRC32 on PutObjectAnnotation (R9.3), so CRC32 (zlib) is
the local default too; that keeps the two backends' answers identical. SHA1/SHA256/SHA512/MD5
come from :mod:`hashlib`; CRC32C and CRC-64/NVME (the server-side default when no checksum is
sent, R9.2) have small table-driven implementations because ``awscrt`` is not a dependency.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import unicodedata
import zlib
from collections.abc import Callable

from ..errors import (
    AnnotationLimitExceeded,
    InvalidAnnotationName,
    InvalidArgument,
    InvalidInput,
    InvalidPayload,
    PayloadTooLarge,
)
from ..uri import validate_bucket, validate_key, validate_prefix

MAX_NAME_BYTES = 512  # R6.1
MAX_PAYLOAD_BYTES = 1024 * 1024  # R7.1: 1 MiB
MAX_ANNOTATIONS_PER_VERSION = 1000  # R8.1
MAX_PAGE_SIZE = 1000  # R4.2, and ListObjectsV2's MaxKeys
DEFAULT_CHECKSUM_ALGORITHM = "CRC32"  # what boto3's default client sends (R9.3)
ANNOTATION_DIRECTIVES = ("COPY", "EXCLUDE")  # R13.1
_RESERVED_PREFIXES = ("aws", "s3")  # R6.3, compared ASCII-case-insensitively
_NAME_PUNCTUATION = frozenset("0123456789_.-")  # R6.2 strict reading: ASCII digits only


def object_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


# --- annotation names (R6) -------------------------------------------------------------------
def annotation_name_error(name: object) -> tuple[str, str] | None:
    """Why ``name`` is not a valid annotation name, as ``(code, reason)``; ``None`` if it is.

    Precedence when several rules are broken (R6.5): empty -> too long -> invalid.
    """
    if not isinstance(name, str):
        return "InvalidAnnotationName", f"names must be strings, not {type(name).__name__} (R6.1)"
    if not name.strip():
        return "UserAnnotationNameMustBeSpecified", "names must not be empty or only whitespace (R6.4)"
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "InvalidAnnotationName", "names must be valid UTF-8 (lone surrogate) (R6.1)"
    if size > MAX_NAME_BYTES:
        return "AnnotationNameTooLong", f"names must be at most {MAX_NAME_BYTES} bytes of UTF-8, got {size} (R6.1)"
    for ch in name:
        if ch not in _NAME_PUNCTUATION and not unicodedata.category(ch).startswith("L"):
            return (
                "InvalidAnnotationName",
                f"character {ch!r} (U+{ord(ch):04X}) is not allowed: use letters, digits 0-9, '_', '.', '-' (R6.2)",
            )
    ascii_lowered = "".join(c.lower() if c.isascii() else c for c in name[:3])
    if ascii_lowered.startswith(_RESERVED_PREFIXES):
        return "InvalidAnnotationName", "names must not start with 'aws' or 's3' (R6.3)"
    return None


def validate_annotation_name(name: str, *, bucket: str, key: str) -> str:
    """Return ``name`` if it is a valid annotation name (R6.1-R6.6), else raise InvalidAnnotationName."""
    problem = annotation_name_error(name)
    if problem is None:
        return name
    code, reason = problem
    shown = name if not isinstance(name, str) or len(name) <= 60 else name[:60] + "..."
    uri = object_uri(bucket, key)
    raise InvalidAnnotationName(f"annotation name {shown!r} on {uri}: {reason}", code=code, uri=uri)


def validate_annotation_prefix(prefix: str | None, *, bucket: str, key: str) -> str | None:
    """A ListObjectAnnotations prefix: ``None``/empty means all; otherwise a str of at most 512 bytes."""
    if prefix is None or prefix == "":
        return None
    uri = object_uri(bucket, key)
    if not isinstance(prefix, str):
        raise InvalidArgument(f"annotation prefix on {uri} must be a string (R4.4)", code="InvalidPrefix", uri=uri)
    try:
        size = len(prefix.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidArgument(
            f"annotation prefix {prefix!r} on {uri} is not valid UTF-8 (R4.4)", code="InvalidPrefix", uri=uri
        ) from None
    if size > MAX_NAME_BYTES:
        raise InvalidArgument(
            f"annotation prefix on {uri} is longer than a name can be ({MAX_NAME_BYTES} bytes) (R4.4)",
            code="InvalidPrefix",
            uri=uri,
        )
    return prefix


# --- payloads (R7) ---------------------------------------------------------------------------
#: Deepest JSON nesting a payload may have (1 MiB of ``[`` would otherwise exhaust the stack).
MAX_JSON_DEPTH = 100


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON (RFC 8259 has no NaN or Infinity)")


def json_payload(text: str, *, where: str) -> bytes:
    """JSON text as a compact UTF-8 payload, or one-line InvalidInput naming ``where`` and the problem:
    not JSON, NaN/Infinity, nesting deeper than :data:`MAX_JSON_DEPTH`, numbers too long to read."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:  # linear scan, before any recursive parser sees the text
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    if deepest > MAX_JSON_DEPTH:
        raise InvalidInput(f"{where} is nested {deepest} levels deep: at most {MAX_JSON_DEPTH} allowed")
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{where} is not valid JSON: {exc}") from None
    except (ValueError, RecursionError) as exc:  # NaN, a number of more than 4,300 digits
        reason = str(exc).split(";")[0].replace("Exceeds the limit", "a number exceeds the limit")
        raise InvalidInput(f"{where} is not usable JSON: {reason}") from None
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def payload_bytes(payload: bytes | bytearray | memoryview | str, *, bucket: str, key: str, name: str) -> bytes:
    """Return the payload as bytes if it satisfies R7.1-R7.5; ``str`` is encoded as UTF-8.

    Order of checks: type -> empty -> too large -> not UTF-8. Bytes are returned unchanged (R7.5).
    """
    uri = object_uri(bucket, key)
    where = f"annotation {name!r} on {uri}"
    if isinstance(payload, str):
        try:
            data = payload.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidPayload(
                f"payload of {where} is not valid UTF-8 (lone surrogate) (R7.2)", code="UnsupportedMediaType", uri=uri
            ) from None
    elif isinstance(payload, (bytes, bytearray, memoryview)):
        data = bytes(payload)
    else:
        raise InvalidPayload(
            f"payload of {where} must be bytes or str, not {type(payload).__name__} (R7.2)",
            code="InvalidRequest",
            uri=uri,
        )
    if not data:
        raise InvalidPayload(
            f"payload of {where} is empty: at least 1 byte is required (R7.3)", code="EntityTooSmall", uri=uri
        )
    if len(data) > MAX_PAYLOAD_BYTES:
        raise PayloadTooLarge(
            f"payload of {where} is {len(data):,} bytes: at most {MAX_PAYLOAD_BYTES:,} (1 MiB) allowed (R7.1)", uri=uri
        )
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidPayload(
            f"payload of {where} is not valid UTF-8 (byte {exc.start}); Base64-encode binary data (R7.2)",
            code="UnsupportedMediaType",
            uri=uri,
        ) from None
    return data


def annotation_limit_error(bucket: str, key: str, name: str, version_id: str | None) -> AnnotationLimitExceeded:
    """The error for a new name on a version that already holds 1,000 annotations (R8.1)."""
    uri = object_uri(bucket, key)
    version = f" (version {version_id})" if version_id else ""
    return AnnotationLimitExceeded(
        f"cannot add annotation {name!r} to {uri}{version}: an object version holds at most "
        f"{MAX_ANNOTATIONS_PER_VERSION} annotations; overwrite or delete one (R8.1)",
        uri=uri,
    )


# --- object requests (R11.7, ListObjectsV2) --------------------------------------------------
MAX_VERSION_ID_CHARS = 1024


def validate_version_id(version_id: str | None, *, bucket: str, key: str) -> str | None:
    """``None`` (the current version) or a non-empty version id string of at most 1,024 characters (R11.7)."""
    if version_id is None:
        return None
    if not isinstance(version_id, str) or not version_id or len(version_id) > MAX_VERSION_ID_CHARS:
        uri = object_uri(bucket, key)
        raise InvalidArgument(f"invalid version id {version_id!r} for {uri} (R11.7)", uri=uri)
    return version_id


def validate_object_address(bucket: str, key: str, version_id: str | None = None) -> str | None:
    """Check the bucket, key and version id a request names (R11.7); returns the version id."""
    validate_bucket(bucket)
    validate_key(key, bucket=bucket)
    return validate_version_id(version_id, bucket=bucket, key=key)


def validate_put_object(
    bucket: str, key: str, metadata: dict[str, str] | None, if_match: str | None
) -> tuple[str, dict[str, str], str | None]:
    """Check a PutObject request before any body is read: the address, the user metadata and the
    If-Match ETag. Returns the object's URI, the metadata as stored and the normalised ETag."""
    validate_bucket(bucket)
    validate_key(key, bucket=bucket)
    metadata = validate_user_metadata(metadata, bucket=bucket, key=key)
    return object_uri(bucket, key), metadata, normalize_etag(if_match) if if_match is not None else None


def validate_annotation_address(bucket: str, key: str, name: str | None, version_id: str | None = None) -> str | None:
    """:func:`validate_object_address` plus the annotation name (R6) when the request names one."""
    validate_bucket(bucket)
    validate_key(key, bucket=bucket)
    if name is not None:
        validate_annotation_name(name, bucket=bucket, key=key)
    return validate_version_id(version_id, bucket=bucket, key=key)


def validate_copy(
    src_bucket: str, src_key: str, dst_bucket: str, dst_key: str, src_version_id: str | None, annotation_directive: str
) -> str | None:
    """Check a CopyObject request (source, destination, R13.1 directive); returns the source version id."""
    validate_bucket(src_bucket)
    validate_key(src_key, bucket=src_bucket)
    validate_bucket(dst_bucket)
    validate_key(dst_key, bucket=dst_bucket)
    src_version_id = validate_version_id(src_version_id, bucket=src_bucket, key=src_key)
    validate_annotation_directive(annotation_directive)
    if (src_bucket, src_key) == (dst_bucket, dst_key) and src_version_id is None:
        raise self_copy_refused(src_bucket, src_key)
    return src_version_id


def self_copy_refused(bucket: str, key: str) -> InvalidArgument:
    """S3 refuses a copy of an object onto itself that changes nothing (InvalidRequest); only
    restoring an older version in a versioned bucket (source version id given) is a real copy."""
    return InvalidArgument(
        f"copying {object_uri(bucket, key)} onto itself changes nothing, and S3 refuses it: copy it to another "
        "key, or, in a versioned bucket, give the version id of an older version to restore it",
        code="InvalidRequest",
        uri=object_uri(bucket, key),
    )


def validate_user_metadata(metadata: dict[str, str] | None, *, bucket: str, key: str) -> dict[str, str]:
    """User metadata as S3 stores it: strings to strings, names lower-cased; ``None`` means none."""
    if not metadata:
        return {}
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise InvalidInput(f"metadata for {object_uri(bucket, key)} must map strings to strings")
    return {k.lower(): v for k, v in metadata.items()}


def validate_list_objects(
    bucket: str, prefix: str | None, *, max_keys: int, delimiter: str | None, continuation_token: str | None
) -> str:
    """Check ListObjectsV2 arguments before any backend is asked; returns the prefix (``""`` for none).

    The continuation token is only checked to be a non-empty string here: its content is the
    backend's own (opaque) business, garbage is refused by the backend with the same error (R4.10).
    """
    validate_bucket(bucket)
    prefix = validate_prefix(prefix or "", bucket=bucket)
    where = object_uri(bucket, prefix)
    validate_page_size(max_keys, argument="max-keys", where=where)
    if delimiter is not None and (not isinstance(delimiter, str) or not delimiter):
        raise InvalidArgument(f"delimiter for {where} must be a non-empty string")
    if continuation_token is not None and (not isinstance(continuation_token, str) or not continuation_token):
        raise InvalidArgument(f"the continuation token provided for {where} is incorrect (R4.10)")
    return prefix


# --- page sizes (R4.2) -----------------------------------------------------------------------
def validate_page_size(size: int, *, argument: str = "max-annotation-results", where: str = "") -> int:
    """Return ``size`` if it is an integer in 1..1000 (R4.2; also used for ListObjectsV2 MaxKeys)."""
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_PAGE_SIZE:
        on = f" on {where}" if where else ""
        raise InvalidArgument(f"{argument}{on} must be an integer between 1 and {MAX_PAGE_SIZE}, got {size!r} (R4.2)")
    return size


# --- ETags (R9.8, R14.2) ---------------------------------------------------------------------
def md5_etag(data: bytes) -> str:
    """The quoted lower-case hex MD5 of ``data``: the ETag of an annotation (R9.8) or single-part object."""
    return f'"{hashlib.md5(data).hexdigest()}"'


def quote_etag(hexdigest: str) -> str:
    return f'"{hexdigest}"'


def normalize_etag(etag: str) -> str:
    """An ETag as S3 returns it (quoted), whether the caller passed it quoted or not (R14.2)."""
    if not isinstance(etag, str) or not etag.strip().strip('"'):
        raise InvalidArgument(f"ETag {etag!r} is empty or not a string (R14.2)")
    return f'"{etag.strip().strip(chr(34))}"'


def etags_match(a: str, b: str) -> bool:
    return normalize_etag(a) == normalize_etag(b)


# --- checksums (R9) --------------------------------------------------------------------------
def _reflected_crc_table(poly: int, width: int) -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc & ((1 << width) - 1))
    return table


_CRC32C_TABLE = _reflected_crc_table(0x82F63B78, 32)
_CRC64NVME_TABLE = _reflected_crc_table(0x9A6C9329AC4BC9B5, 64)


def _reflected_crc(data: bytes, table: list[int], width: int) -> int:
    mask = (1 << width) - 1
    crc = mask
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ mask


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli); check value 0xE3069283 for b"123456789"."""
    return _reflected_crc(data, _CRC32C_TABLE, 32)


def crc64nvme(data: bytes) -> int:
    """CRC-64/NVME, S3's default annotation checksum (R9.2); check value 0xAE8B14860A799888."""
    return _reflected_crc(data, _CRC64NVME_TABLE, 64)


def _int_digest(value: int, width: int) -> bytes:
    return value.to_bytes(width // 8, "big")


_CHECKSUMS: dict[str, Callable[[bytes], bytes]] = {
    "CRC32": lambda d: _int_digest(zlib.crc32(d), 32),
    "CRC32C": lambda d: _int_digest(crc32c(d), 32),
    "CRC64NVME": lambda d: _int_digest(crc64nvme(d), 64),
    "SHA1": lambda d: hashlib.sha1(d).digest(),
    "SHA256": lambda d: hashlib.sha256(d).digest(),
    "SHA512": lambda d: hashlib.sha512(d).digest(),
    "MD5": lambda d: hashlib.md5(d).digest(),
}
SUPPORTED_CHECKSUM_ALGORITHMS = tuple(_CHECKSUMS)


def checksum(algorithm: str, data: bytes) -> str:
    """The base64 checksum S3 would report in ``x-amz-checksum-<algorithm>`` for ``data``."""
    algo = (algorithm or "").upper()
    if algo not in _CHECKSUMS:
        raise InvalidArgument(
            f"checksum algorithm {algorithm!r} is not supported here: use one of {', '.join(SUPPORTED_CHECKSUM_ALGORITHMS)} (R9.1)"
        )
    return base64.b64encode(_CHECKSUMS[algo](data)).decode("ascii")


def verify_checksum(algorithm: str, expected_b64: str, data: bytes, *, uri: str = "") -> None:
    """Raise InvalidPayload (code BadDigest) if ``expected_b64`` is not ``data``'s checksum (R9.6)."""
    actual = checksum(algorithm, data)
    if actual != expected_b64:
        on = f" of {uri}" if uri else ""
        raise InvalidPayload(
            f"{algorithm.upper()} checksum{on} does not match the payload: sent {expected_b64}, computed {actual} (R9.6)",
            code="BadDigest",
            uri=uri or None,
        )


# --- continuation tokens (R4.9, R4.10) -------------------------------------------------------
def encode_token(scope: str, last: str, **extra) -> str:
    """An opaque continuation token: urlsafe base64 of JSON naming the last item returned."""
    raw = json.dumps({"s": scope, "l": last, **extra}, ensure_ascii=False, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").rstrip("=")


def decode_token(token: str, scope: str, *, where: str = "") -> dict:
    """The fields of a token made by :func:`encode_token`; garbage raises InvalidArgument (R4.10)."""
    on = f" for {where}" if where else ""
    bad = InvalidArgument(f"the continuation token provided{on} is incorrect (R4.10)")
    if not isinstance(token, str) or not token:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        fields = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad from None
    if not isinstance(fields, dict) or fields.get("s") != scope or not isinstance(fields.get("l"), str):
        raise bad
    return fields


# --- copy directive (R13) --------------------------------------------------------------------
def validate_annotation_directive(directive: str) -> str:
    """``COPY`` or ``EXCLUDE`` (R13.1); anything else is InvalidArgument (R13.6)."""
    if directive not in ANNOTATION_DIRECTIVES:
        raise InvalidArgument(f"annotation directive {directive!r} is not valid: use COPY or EXCLUDE (R13.6)")
    return directive
