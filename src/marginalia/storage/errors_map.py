"""botocore errors -> :mod:`marginalia.errors` (spec R20.3), with messages that name the object.

The boto3 backend must raise exactly what the local backend raises, so callers (agents, the
checkpointer, the CLI) handle one set of exceptions. Mapping is by S3 error code first and HTTP
status second, because HEAD responses have no body and only a status (``404``, ``412``...).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from ..errors import (
    AnnotationLimitExceeded,
    AnnotationNotFound,
    BackendError,
    BucketNotFound,
    ConfigurationError,
    ConflictRetry,
    InvalidAnnotationName,
    InvalidArgument,
    InvalidPayload,
    MethodNotAllowed,
    ObjectNotFound,
    PayloadTooLarge,
    PreconditionFailed,
    StorageError,
    TransientError,
    Unsupported,
)

_BY_CODE: dict[str, type[StorageError]] = {
    "NoSuchBucket": BucketNotFound,
    "NoSuchKey": ObjectNotFound,
    "NoSuchVersion": ObjectNotFound,
    "NotFound": ObjectNotFound,
    "MethodNotAllowed": MethodNotAllowed,
    "NoSuchAnnotation": AnnotationNotFound,
    "PreconditionFailed": PreconditionFailed,
    "AnnotationLimitExceeded": AnnotationLimitExceeded,
    "InvalidAnnotationName": InvalidAnnotationName,
    "AnnotationNameTooLong": InvalidAnnotationName,
    "UserAnnotationNameMustBeSpecified": InvalidAnnotationName,
    "EntityTooSmall": InvalidPayload,
    "UnsupportedMediaType": InvalidPayload,
    "BadDigest": InvalidPayload,
    "EntityTooLarge": PayloadTooLarge,
    "InvalidArgument": InvalidArgument,
    "InvalidPrefix": InvalidArgument,
    "OperationAborted": ConflictRetry,
    "AnnotationRequestConflict": ConflictRetry,
    "ConditionalRequestConflict": ConflictRetry,
    "SlowDown": TransientError,
    "Throttling": TransientError,
    "ThrottlingException": TransientError,
    "RequestThrottled": TransientError,
    "RequestTimeout": TransientError,
    "InternalError": TransientError,
    "ServiceUnavailable": TransientError,
}
_BY_STATUS: dict[int, type[StorageError]] = {
    404: ObjectNotFound,
    405: MethodNotAllowed,
    409: ConflictRetry,
    412: PreconditionFailed,
    429: TransientError,
}
_ANNOTATION_OPERATIONS = {
    "PutObjectAnnotation",
    "GetObjectAnnotation",
    "ListObjectAnnotations",
    "DeleteObjectAnnotation",
}


@dataclass(frozen=True, slots=True)
class Target:
    """What a request was about, for the message: operation, ``s3://bucket/key``, annotation, version."""

    operation: str
    bucket: str
    key: str = ""
    annotation: str | None = None
    version_id: str | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def describe(self) -> str:
        text = self.uri
        if self.version_id:
            text += f" (version {self.version_id})"
        if self.annotation is not None:
            text = f"annotation {self.annotation!r} on {text}"
        return f"{self.operation} {text}"


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_status(exc: ClientError) -> int | None:
    return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def map_client_error(exc: ClientError, target: Target) -> StorageError:
    """The project exception for an S3 error answer (R20.3)."""
    code = error_code(exc)
    status = error_status(exc)
    server_message = exc.response.get("Error", {}).get("Message") or ""
    code_for_message = code if code and not code.isdigit() else _default_code(status)
    detail = (
        f"{server_message} ({code_for_message}, HTTP {status})"
        if server_message
        else f"{code_for_message} (HTTP {status})"
    )
    message = f"{target.describe()}: {detail}"

    if code == "InvalidRequest" and target.operation in _ANNOTATION_OPERATIONS and "encrypt" in server_message.lower():
        return Unsupported(
            f"{message}: objects encrypted with SSE-C cannot have annotations (R10.2)", code=code, uri=target.uri
        )
    if code == "AccessDenied" or status == 403:
        return BackendError(
            f"{message}: the credentials in use may not perform {target.operation} here", code=code or "AccessDenied",
            status=status, uri=target.uri,
        )  # fmt: skip
    cls = _BY_CODE.get(code) or (_BY_STATUS.get(status) if status else None)
    if cls is None and status is not None and status >= 500:
        cls = TransientError
    if cls is None:
        return BackendError(message, code=code or None, status=status, uri=target.uri)
    real_code = code if code and not code.isdigit() and code != "NotFound" else None
    return cls(message, code=real_code, uri=target.uri)  # None keeps the class's own code


def _default_code(status: int | None) -> str:
    return {404: "NotFound", 405: "MethodNotAllowed", 409: "Conflict", 412: "PreconditionFailed"}.get(
        status or 0, "Error"
    )


def map_botocore_error(exc: BotoCoreError, target: Target) -> StorageError | ConfigurationError:
    """Errors raised before or without an S3 answer: credentials, region, network, timeouts."""
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return ConfigurationError(
            f"{target.describe()}: no usable AWS credentials ({exc}); set AWS_PROFILE or AWS_ACCESS_KEY_ID/"
            "AWS_SECRET_ACCESS_KEY, or use MARGINALIA_STORE=local:<dir>"
        )
    if isinstance(exc, NoRegionError):
        return ConfigurationError(f"{target.describe()}: no AWS region configured; set AWS_REGION")
    if isinstance(
        exc,
        (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError, ResponseStreamingError),
    ):
        return TransientError(f"{target.describe()}: network error talking to S3: {exc}", uri=target.uri)
    return BackendError(f"{target.describe()}: {exc}", code=type(exc).__name__, uri=target.uri)


@contextlib.contextmanager
def translate_errors(target: Target) -> Iterator[None]:
    """Run boto3 calls, turning botocore exceptions into project exceptions for ``target``."""
    try:
        yield
    except ClientError as exc:
        raise map_client_error(exc, target) from exc
    except BotoCoreError as exc:
        raise map_botocore_error(exc, target) from exc
