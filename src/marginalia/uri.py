"""``s3://bucket/key`` URIs, validated once, centrally.

Keys are checked here for every backend, so a key can never escape a local bucket directory:
NUL and other control characters, ``.``/``..`` path segments, a leading ``/`` and keys longer
than S3's 1,024 bytes are rejected with an :class:`~marginalia.errors.InvalidURI` naming the URI.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidURI

MAX_KEY_BYTES = 1024
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def validate_bucket(bucket: str) -> str:
    """Return ``bucket`` if it follows S3's general purpose bucket naming rules."""
    if not isinstance(bucket, str) or not _BUCKET_RE.match(bucket) or ".." in bucket:
        raise InvalidURI(
            f"invalid bucket name {bucket!r}: 3-63 characters, lower-case letters, digits, '.' and '-', "
            "starting and ending with a letter or digit"
        )
    if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", bucket):
        raise InvalidURI(f"invalid bucket name {bucket!r}: must not look like an IP address")
    return bucket


def validate_key(key: str, *, bucket: str | None = None, allow_empty: bool = False) -> str:
    """Return ``key`` if it is safe on every backend; raise :class:`InvalidURI` otherwise."""
    where = f"s3://{bucket}/{key}" if bucket else repr(key)
    if not isinstance(key, str):
        raise InvalidURI(f"invalid key {where}: not a string")
    if not key:
        if allow_empty:
            return key
        raise InvalidURI(f"invalid key {where}: empty key")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise InvalidURI(f"invalid key {where[:80]}...: longer than {MAX_KEY_BYTES} bytes")
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidURI(f"invalid key {where!r}: not valid UTF-8") from None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
        raise InvalidURI(f"invalid key {where!r}: contains NUL or another control character")
    if key.startswith("/"):
        raise InvalidURI(f"invalid key {where}: must not start with '/' (absolute path)")
    if "\\" in key:
        raise InvalidURI(f"invalid key {where}: backslashes are not allowed")
    parts = key.split("/")
    if any(p in (".", "..") for p in parts):
        raise InvalidURI(f"invalid key {where}: '.' and '..' path segments are not allowed")
    return key


def validate_prefix(prefix: str, *, bucket: str | None = None) -> str:
    """A listing prefix: like a key but may be empty and may end with '/'."""
    if prefix == "":
        return prefix
    return validate_key(prefix, bucket=bucket)


@dataclass(frozen=True, slots=True)
class S3URI:
    bucket: str
    key: str = ""

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def name(self) -> str:
        """Last path segment of the key (file name)."""
        return self.key.rsplit("/", 1)[-1]

    def join(self, *parts: str) -> S3URI:
        key = "/".join(p.strip("/") for p in (self.key, *parts) if p.strip("/"))
        return S3URI(self.bucket, validate_key(key, bucket=self.bucket))


def parse_uri(uri: str, *, require_key: bool = True) -> S3URI:
    """Parse ``s3://bucket/key``. With ``require_key=False`` a bare bucket or prefix is accepted."""
    if isinstance(uri, S3URI):
        return uri
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise InvalidURI(f"invalid URI {uri!r}: expected s3://bucket/key")
    rest = uri[5:]
    bucket, _, key = rest.partition("/")
    validate_bucket(bucket)
    if require_key:
        validate_key(key, bucket=bucket)
    else:
        validate_prefix(key, bucket=bucket)
    return S3URI(bucket, key)
