"""``S3Store``: the :class:`~marginalia.storage.base.Store` interface on Amazon S3, with boto3.

What it takes care of, so callers do not have to:

* **Configuration the AWS way.** The standard credential chain and region; ``AWS_ENDPOINT_URL_S3``
  is honoured by boto3 itself (an explicit ``endpoint_url`` wins). With a custom endpoint
  (MinIO, the project's test server, ...) requests use path-style addressing. Retries use botocore's
  ``standard`` mode.
* **Parity with the local backend.** The shared validator (:mod:`.rules`, :mod:`marginalia.uri`)
  runs before every request, so bad input raises the same exception on both backends without a
  round trip (R20.2); S3's error answers are mapped to the same exceptions (:mod:`.errors_map`,
  R20.3), with messages naming ``s3://bucket/key`` and the annotation.
* **The annotation API as the spec reads it.** Payloads are read with ``.read()`` (R3.4);
  ``ObjectIfMatch`` is sent when the caller passes the object's ETag (R14.1); DeleteObjectAnnotation
  of a missing name is a success (R5.4); copies always send ``AnnotationDirective`` (R13.8, R20.7).
* **Streaming bodies.** Files and streams are never read whole into memory. Small bodies go in one
  PutObject (which returns the ETag and version id); bodies above ``multipart_threshold`` go
  through boto3's managed transfer (``upload_fileobj``, multipart, parallel parts) followed by a
  HEAD. Conditional writes (``if_none_match`` / ``if_match``) always use a single streaming
  PutObject, because s3transfer does not pass conditions to multipart uploads; S3 accepts single
  PUTs up to 5 GiB.

Thread-safe: one botocore client (thread-safe) is shared; nothing else is mutable.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import io
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ..errors import BackendError, InvalidArgument, InvalidInput, StorageError, Unsupported
from ..uri import validate_bucket, validate_key
from . import rules
from .base import (
    Annotation,
    AnnotationDirective,
    AnnotationInfo,
    AnnotationPage,
    Body,
    ObjectInfo,
    ObjectPage,
    Store,
)
from .errors_map import Target, error_code, error_status, map_botocore_error, map_client_error, translate_errors

CHUNK_SIZE = 1024 * 1024
DEFAULT_MULTIPART_THRESHOLD = 8 * 1024 * 1024  # boto3's own default
MAX_SINGLE_PUT_BYTES = 5 * 1024**3  # S3's limit for PutObject and CopyObject
DELETE_BATCH = 1000  # DeleteObjects' limit
DEFAULT_CONTENT_TYPE = "binary/octet-stream"
_CHECKSUM_FIELDS = (
    "CRC32",
    "CRC32C",
    "CRC64NVME",
    "SHA1",
    "SHA256",
    "SHA512",
    "MD5",
    "XXHASH64",
    "XXHASH3",
    "XXHASH128",
)


def _is_aws_endpoint(url: str | None) -> bool:
    host = urlparse(url).hostname or "" if url else ""
    return not url or host.endswith((".amazonaws.com", ".amazonaws.com.cn", ".api.aws"))


_SESSIONS: dict[tuple[str | None, str | None], boto3.session.Session] = {}
_SESSIONS_LOCK = threading.Lock()


def _shared_session(region_name: str | None) -> boto3.session.Session:
    """One boto3 session per (region, profile) per process: a new session re-loads the S3 service
    model (slow), while clients made from one session share it. Client creation is serialised,
    because sessions are not thread-safe (the clients they make are)."""
    cache_key = (region_name, os.environ.get("AWS_PROFILE"))
    with _SESSIONS_LOCK:
        session = _SESSIONS.get(cache_key)
        if session is None:
            session = _SESSIONS[cache_key] = boto3.session.Session(region_name=region_name)
        return session


def _utc(t: dt.datetime | None) -> dt.datetime:
    if t is None:
        return dt.datetime.now(dt.UTC)
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


def _response_date(response: dict) -> dt.datetime:
    """The server's ``Date`` header: when a PUT happened (PutObject returns no Last-Modified)."""
    raw = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    try:
        return _utc(email.utils.parsedate_to_datetime(raw)) if raw else _utc(None)
    except (TypeError, ValueError):
        return _utc(None)


def _version(value: str | None) -> str | None:
    """S3's ``null`` version (unversioned bucket / pre-versioning object) is ``None`` here, as locally."""
    return None if value in (None, "", "null") else value


def _checksum(response: dict) -> tuple[str | None, str | None]:
    for algorithm in _CHECKSUM_FIELDS:
        value = response.get(f"Checksum{algorithm}")
        if value:
            return algorithm, value
    return None, None


class S3Store(Store):
    """Objects and annotations in Amazon S3 (or any S3-compatible endpoint that has annotations)."""

    kind = "s3"

    def __init__(
        self,
        endpoint_url: str | None = None,
        client: Any = None,
        region_name: str | None = None,
        *,
        multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD,
        max_attempts: int = 5,
    ) -> None:
        if client is None:
            client = self._make_client(endpoint_url, region_name, max_attempts)
        self.client = client
        self.multipart_threshold = multipart_threshold
        self.transfer_config = TransferConfig(
            multipart_threshold=multipart_threshold, multipart_chunksize=multipart_threshold
        )

    @staticmethod
    def _make_client(endpoint_url: str | None, region_name: str | None, max_attempts: int):
        session = _shared_session(region_name)
        config = Config(retries={"mode": "standard", "max_attempts": max_attempts}, connect_timeout=10, read_timeout=60)
        explicit = endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        path_style = Config(s3={"addressing_style": "path"})
        with _SESSIONS_LOCK:
            if explicit and not _is_aws_endpoint(explicit):
                return session.client("s3", endpoint_url=endpoint_url, config=config.merge(path_style))
            client = session.client("s3", endpoint_url=endpoint_url, config=config)
            if not _is_aws_endpoint(client.meta.endpoint_url):  # e.g. endpoint_url in ~/.aws/config
                client.close()
                client = session.client("s3", endpoint_url=endpoint_url, config=config.merge(path_style))
            return client

    @property
    def endpoint_url(self) -> str:
        return self.client.meta.endpoint_url

    def close(self) -> None:
        close = getattr(self.client, "close", None)
        if close is not None:
            close()

    def __repr__(self) -> str:
        return f"<S3Store {self.endpoint_url}>"

    # --- buckets -----------------------------------------------------------------------------
    def create_bucket(self, bucket: str, *, versioned: bool = False, exist_ok: bool = True) -> None:
        validate_bucket(bucket)
        target = Target("CreateBucket", bucket)
        # Checked first: in us-east-1, S3 answers 200 to re-creating one's own bucket.
        if self.bucket_exists(bucket):
            if not exist_ok:
                raise StorageError(f"bucket {bucket!r} already exists", code="BucketAlreadyOwnedByYou", uri=target.uri)
        else:
            kwargs: dict[str, Any] = {"Bucket": bucket}
            region = self.client.meta.region_name
            if region and region not in ("us-east-1", "aws-global"):
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
            try:
                with translate_errors(target):
                    self.client.create_bucket(**kwargs)
            except StorageError as exc:
                if exc.code != "BucketAlreadyOwnedByYou" or not exist_ok:
                    raise
        if versioned and not self.is_versioned(bucket):
            with translate_errors(Target("PutBucketVersioning", bucket)):
                self.client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})

    def bucket_exists(self, bucket: str) -> bool:
        validate_bucket(bucket)
        target = Target("HeadBucket", bucket)
        try:
            with translate_errors(target):
                self.client.head_bucket(Bucket=bucket)
        except StorageError as exc:
            if isinstance(exc.__cause__, ClientError) and error_status(exc.__cause__) == 404:
                return False
            raise
        return True

    def is_versioned(self, bucket: str) -> bool:
        validate_bucket(bucket)
        with translate_errors(Target("GetBucketVersioning", bucket)):
            return self.client.get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled"

    # --- objects -----------------------------------------------------------------------------
    def put_object(
        self,
        bucket: str,
        key: str,
        body: Body,
        *,
        if_none_match: bool = False,
        if_match: str | None = None,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> ObjectInfo:
        uri, metadata, expected = rules.validate_put_object(bucket, key, metadata, if_match)
        args: dict[str, Any] = {"ContentType": content_type or DEFAULT_CONTENT_TYPE}
        if metadata:
            args["Metadata"] = metadata
        conditions: dict[str, str] = {}
        if if_none_match:
            conditions["IfNoneMatch"] = "*"
        if expected is not None:
            conditions["IfMatch"] = expected
        target = Target("PutObject", bucket, key)

        if isinstance(body, (bytes, bytearray, memoryview)):
            data = bytes(body)
            return self._single_put(target, data, len(data), {**args, **conditions}, metadata)
        if isinstance(body, Path):
            try:
                f = body.open("rb")
            except FileNotFoundError:
                raise InvalidInput(f"cannot upload to {uri}: file {str(body)!r} does not exist") from None
            except IsADirectoryError:
                raise InvalidInput(f"cannot upload to {uri}: {str(body)!r} is a directory") from None
            with f:
                return self._put_stream(target, f, args, conditions, metadata)
        if hasattr(body, "read"):
            return self._put_stream(target, body, args, conditions, metadata)
        raise InvalidInput(
            f"cannot upload to {uri}: body must be bytes, a binary file object or a Path, not {type(body).__name__}"
        )

    def _put_stream(self, target: Target, f, args: dict, conditions: dict, metadata: dict) -> ObjectInfo:
        size = _remaining_size(f)
        if size is None:  # not seekable: spool to disk (bounded memory), then it has a size
            with tempfile.SpooledTemporaryFile(max_size=self.multipart_threshold) as spool:
                _copy_binary(f, spool, target.uri)
                spool.seek(0)
                return self._put_stream(target, spool, args, conditions, metadata)
        if conditions or size <= self.multipart_threshold:
            if size > MAX_SINGLE_PUT_BYTES:
                raise Unsupported(
                    f"cannot write {target.uri} conditionally: {size:,} bytes exceeds S3's 5 GiB single-PUT limit "
                    "(conditional multipart uploads are not supported by boto3's transfer manager)",
                    uri=target.uri,
                )
            return self._single_put(target, _NoClose(f), size, {**args, **conditions}, metadata)
        with translate_errors(Target("UploadFileobj", target.bucket, target.key)):
            self.client.upload_fileobj(
                _NoClose(f), target.bucket, target.key, ExtraArgs=args, Config=self.transfer_config
            )
        return self.head_object(target.bucket, target.key)

    def _single_put(self, target: Target, body, size: int, args: dict, metadata: dict) -> ObjectInfo:
        with translate_errors(target):
            response = self.client.put_object(Bucket=target.bucket, Key=target.key, Body=body, **args)
        return ObjectInfo(
            bucket=target.bucket,
            key=target.key,
            etag=response["ETag"],
            size=size,
            last_modified=_response_date(response),
            version_id=_version(response.get("VersionId")),
            content_type=args.get("ContentType"),
            metadata=metadata,
        )

    def _object_target(self, op: str, bucket: str, key: str, version_id: str | None) -> tuple[Target, str | None]:
        version_id = rules.validate_object_address(bucket, key, version_id)
        return Target(op, bucket, key, version_id=version_id), version_id

    @staticmethod
    def _info_from(bucket: str, key: str, response: dict) -> ObjectInfo:
        return ObjectInfo(
            bucket=bucket,
            key=key,
            etag=response["ETag"],
            size=int(response.get("ContentLength", 0)),
            last_modified=_utc(response.get("LastModified")),
            version_id=_version(response.get("VersionId")),
            content_type=response.get("ContentType"),
            metadata=dict(response.get("Metadata") or {}),
        )

    def head_object(self, bucket: str, key: str, *, version_id: str | None = None) -> ObjectInfo:
        target, version_id = self._object_target("HeadObject", bucket, key, version_id)
        extra = {"VersionId": version_id} if version_id else {}
        try:
            response = self.client.head_object(Bucket=bucket, Key=key, **extra)
        except ClientError as exc:
            raise self._not_found_error(exc, target) from exc
        except BotoCoreError as exc:
            raise map_botocore_error(exc, target) from exc
        return self._info_from(bucket, key, response)

    def _not_found_error(self, exc: ClientError, target: Target) -> StorageError:
        """HEAD answers carry no error code: a 404 may mean the bucket, or the object, is missing;
        a 400/405 on a versioned HEAD means a delete marker or a malformed version id."""
        error = map_client_error(exc, target)
        if (
            error_status(exc) == 404
            and error_code(exc) in ("404", "NotFound", "")
            and not self.bucket_exists(target.bucket)
        ):
            return map_client_error(
                ClientError({"Error": {"Code": "NoSuchBucket", "Message": "The specified bucket does not exist"},
                             "ResponseMetadata": {"RequestId": "", "HostId": "", "HTTPStatusCode": 404,
                                                  "HTTPHeaders": {}, "RetryAttempts": 0}}, target.operation),
                target,
            )  # fmt: skip
        return error

    def open_object(
        self, bucket: str, key: str, *, version_id: str | None = None
    ) -> tuple[Iterator[bytes], ObjectInfo]:
        target, version_id = self._object_target("GetObject", bucket, key, version_id)
        extra = {"VersionId": version_id} if version_id else {}
        with translate_errors(target):
            response = self.client.get_object(Bucket=bucket, Key=key, **extra)
        return self._chunks(response["Body"], target), self._info_from(bucket, key, response)

    @staticmethod
    def _chunks(stream, target: Target) -> Iterator[bytes]:
        try:
            with translate_errors(target):
                yield from stream.iter_chunks(chunk_size=CHUNK_SIZE)
        finally:
            stream.close()

    def list_objects_page(
        self,
        bucket: str,
        prefix: str = "",
        *,
        max_keys: int = 1000,
        continuation_token: str | None = None,
        start_after: str | None = None,
        delimiter: str | None = None,
    ) -> ObjectPage:
        prefix = rules.validate_list_objects(
            bucket, prefix, max_keys=max_keys, delimiter=delimiter, continuation_token=continuation_token
        )
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": max_keys}
        if continuation_token:
            kwargs["ContinuationToken"] = continuation_token
        if start_after:
            kwargs["StartAfter"] = start_after
        if delimiter:
            kwargs["Delimiter"] = delimiter
        with translate_errors(Target("ListObjectsV2", bucket, prefix)):
            response = self.client.list_objects_v2(**kwargs)
        objects = [
            ObjectInfo(
                bucket=bucket,
                key=item["Key"],
                etag=item["ETag"],
                size=int(item["Size"]),
                last_modified=_utc(item["LastModified"]),
            )
            for item in response.get("Contents", [])
        ]
        prefixes = [p["Prefix"] for p in response.get("CommonPrefixes", [])]
        next_token = response.get("NextContinuationToken") if response.get("IsTruncated") else None
        return ObjectPage(objects, next_token, prefixes)

    def delete_object(self, bucket: str, key: str, *, version_id: str | None = None) -> None:
        target, version_id = self._object_target("DeleteObject", bucket, key, version_id)
        extra = {"VersionId": version_id} if version_id else {}
        with translate_errors(target):
            self.client.delete_object(Bucket=bucket, Key=key, **extra)

    def delete_objects(self, bucket: str, keys: Iterable[str]) -> None:
        validate_bucket(bucket)
        keys = [validate_key(k, bucket=bucket) for k in keys]
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            with translate_errors(Target("DeleteObjects", bucket, batch[0])):
                response = self.client.delete_objects(
                    Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
                )
            errors = response.get("Errors") or []
            if errors:
                shown = "; ".join(
                    f"s3://{bucket}/{e.get('Key')}: {e.get('Code')} {e.get('Message', '')}".strip() for e in errors[:5]
                )
                more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
                raise BackendError(
                    f"DeleteObjects could not delete {len(errors)} of {len(batch)} keys: {shown}{more}",
                    code=errors[0].get("Code"),
                    uri=f"s3://{bucket}/{errors[0].get('Key')}",
                )

    def copy_object(
        self,
        src_bucket: str,
        src_key: str,
        dst_bucket: str,
        dst_key: str,
        *,
        src_version_id: str | None = None,
        annotation_directive: AnnotationDirective = "COPY",
    ) -> ObjectInfo:
        src_version_id = rules.validate_copy(
            src_bucket, src_key, dst_bucket, dst_key, src_version_id, annotation_directive
        )
        source = {"Bucket": src_bucket, "Key": src_key, **({"VersionId": src_version_id} if src_version_id else {})}
        target = Target(f"CopyObject from {rules.object_uri(src_bucket, src_key)} to", dst_bucket, dst_key)
        try:
            response = self.client.copy_object(
                Bucket=dst_bucket, Key=dst_key, CopySource=source, AnnotationDirective=annotation_directive
            )
        except ClientError as exc:
            if error_code(exc) == "InvalidRequest" and "size" in str(exc).lower():
                # > 5 GiB: CopyObject refuses; the managed copy goes multipart and, given the
                # directive explicitly, copies the annotations afterwards (R13.7, R13.8).
                with translate_errors(target):
                    self.client.copy(
                        source, dst_bucket, dst_key, ExtraArgs={"AnnotationDirective": annotation_directive},
                        Config=self.transfer_config,
                    )  # fmt: skip
                return self.head_object(dst_bucket, dst_key)
            if error_status(exc) == 404 and error_code(exc) == "NoSuchKey":
                raise map_client_error(
                    exc, Target("CopyObject", src_bucket, src_key, version_id=src_version_id)
                ) from exc
            raise map_client_error(exc, target) from exc
        except BotoCoreError as exc:
            raise map_botocore_error(exc, target) from exc
        return self.head_object(dst_bucket, dst_key, version_id=_version(response.get("VersionId")))

    # --- annotations -------------------------------------------------------------------------
    def _annotation_target(self, op: str, bucket: str, key: str, name: str | None, version_id: str | None):
        version_id = rules.validate_annotation_address(bucket, key, name, version_id)
        extra = {"VersionId": version_id} if version_id else {}
        return Target(op, bucket, key, annotation=name, version_id=version_id), extra

    def put_annotation(
        self,
        bucket: str,
        key: str,
        name: str,
        payload: bytes | str,
        *,
        version_id: str | None = None,
        if_match: str | None = None,
    ) -> AnnotationInfo:
        target, extra = self._annotation_target("PutObjectAnnotation", bucket, key, name, version_id)
        data = rules.payload_bytes(payload, bucket=bucket, key=key, name=name)
        if if_match is not None:
            extra["ObjectIfMatch"] = rules.normalize_etag(if_match)
        with translate_errors(target):
            response = self.client.put_object_annotation(
                Bucket=bucket, Key=key, AnnotationName=name, AnnotationPayload=data, **extra
            )
        algorithm, value = _checksum(response)
        return AnnotationInfo(
            name=name,
            size=len(data),
            etag=response.get("ETag") or rules.md5_etag(data),
            last_modified=_response_date(response),
            version_id=_version(response.get("ObjectVersionId")),
            checksum_algorithm=algorithm,
            checksum=value,
        )

    def get_annotation(self, bucket: str, key: str, name: str, *, version_id: str | None = None) -> Annotation:
        target, extra = self._annotation_target("GetObjectAnnotation", bucket, key, name, version_id)
        with translate_errors(target):
            response = self.client.get_object_annotation(Bucket=bucket, Key=key, AnnotationName=name, **extra)
            stream = response["AnnotationPayload"]
            try:
                payload = stream.read()
            finally:
                stream.close()
        algorithm, value = _checksum(response)
        info = AnnotationInfo(
            name=name,
            size=len(payload),
            etag=response.get("ETag") or rules.md5_etag(payload),
            last_modified=_utc(response.get("LastModified")),
            version_id=_version(response.get("ObjectVersionId")),
            checksum_algorithm=algorithm,
            checksum=value,
        )
        return Annotation(bucket, key, info, payload)

    def list_annotations_page(
        self,
        bucket: str,
        key: str,
        *,
        prefix: str | None = None,
        version_id: str | None = None,
        max_results: int = 1000,
        continuation_token: str | None = None,
    ) -> AnnotationPage:
        target, extra = self._annotation_target("ListObjectAnnotations", bucket, key, None, version_id)
        rules.validate_page_size(max_results, where=target.uri)
        prefix = rules.validate_annotation_prefix(prefix, bucket=bucket, key=key)
        if prefix:
            extra["AnnotationPrefix"] = prefix
        if continuation_token is not None:
            if not isinstance(continuation_token, str) or not continuation_token:
                raise InvalidArgument(f"the continuation token provided for {target.uri} is incorrect (R4.10)")
            extra["ContinuationToken"] = continuation_token
        with translate_errors(target):
            response = self.client.list_object_annotations(
                Bucket=bucket, Key=key, MaxAnnotationResults=max_results, **extra
            )
        version = _version(response.get("ObjectVersionId"))
        entries = [
            AnnotationInfo(
                name=entry["AnnotationName"],
                size=int(entry["Size"]),
                etag=entry.get("ETag", ""),
                last_modified=_utc(entry["LastModified"]),
                version_id=version,
                checksum_algorithm=(entry.get("ChecksumAlgorithm") or [None])[0],
            )
            for entry in response.get("Annotations", [])
        ]
        return AnnotationPage(entries, response.get("NextContinuationToken") or None)

    def delete_annotation(
        self, bucket: str, key: str, name: str, *, version_id: str | None = None, if_match: str | None = None
    ) -> None:
        target, extra = self._annotation_target("DeleteObjectAnnotation", bucket, key, name, version_id)
        if if_match is not None:
            extra["ObjectIfMatch"] = rules.normalize_etag(if_match)
        try:
            self.client.delete_object_annotation(Bucket=bucket, Key=key, AnnotationName=name, **extra)
        except ClientError as exc:
            if error_code(exc) == "NoSuchAnnotation":
                return  # already gone: deletion is idempotent (R5.4)
            raise map_client_error(exc, target) from exc
        except BotoCoreError as exc:
            raise map_botocore_error(exc, target) from exc


# --- body helpers ----------------------------------------------------------------------------
def _remaining_size(f) -> int | None:
    """Bytes from the current position to the end of a seekable binary file; None if not seekable."""
    try:
        if not f.seekable():
            return None
        start = f.tell()
        end = f.seek(0, io.SEEK_END)
        f.seek(start)
        return end - start
    except (AttributeError, OSError, ValueError):
        return None


def _copy_binary(src, dst, uri: str) -> None:
    while chunk := src.read(CHUNK_SIZE):
        if isinstance(chunk, str):
            raise InvalidInput(f"cannot upload to {uri}: the file object is open in text mode; open it with 'rb'")
        dst.write(chunk)


class _NoClose(io.RawIOBase):
    """A view of the caller's file that boto3 may read and seek but never close (the caller owns it)."""

    def __init__(self, f) -> None:
        self._f = f
        self._start = f.tell()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self._f.read(size)
        if isinstance(chunk, str):
            raise InvalidInput("the file object is open in text mode; open it with 'rb'")
        return chunk

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            return self._f.seek(self._start + offset) - self._start
        return self._f.seek(offset, whence) - self._start

    def tell(self) -> int:
        return self._f.tell() - self._start

    def close(self) -> None:  # leave the caller's file open
        pass


__all__ = ["S3Store"]
