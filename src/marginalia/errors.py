"""One error hierarchy for all of Marginalia (storage, checkpointer, agents, search).

Every error carries a message that names the object (``s3://bucket/key``) or file and the
rule that was broken. The CLI turns any :class:`MarginaliaError` into one line on stderr and the
exit status :func:`exit_status` gives it (2 bad input, 3 not found, 4 conflict or busy, 5 remote
failure); nothing else is ever shown as a traceback for bad input.
"""

from __future__ import annotations


class MarginaliaError(Exception):
    """Base class of every error Marginalia raises on purpose."""

    #: S3 error code this corresponds to, when there is one (e.g. ``NoSuchKey``).
    code: str | None = None

    def __init__(self, message: str, *, code: str | None = None, uri: str | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code
        self.uri = uri


class InvalidInput(MarginaliaError):
    """Bad input from the caller: a URI, a key, a file, a flag."""


class InvalidURI(InvalidInput):
    """Not a valid ``s3://bucket/key`` URI, or a key that could escape a local bucket."""


class ConfigurationError(MarginaliaError):
    """MARGINALIA_* settings or credentials are missing or inconsistent."""


# --- storage -------------------------------------------------------------------------------
class StorageError(MarginaliaError):
    """Base of every storage-layer error (both backends raise the same ones)."""


class BucketNotFound(StorageError):
    code = "NoSuchBucket"


class ObjectNotFound(StorageError):
    """The object (or the version asked for) does not exist; also a delete marker."""

    code = "NoSuchKey"


class AnnotationNotFound(StorageError):
    code = "NoSuchAnnotation"


class PreconditionFailed(StorageError):
    """A conditional request lost: If-Match / If-None-Match / ObjectIfMatch did not hold."""

    code = "PreconditionFailed"


# The spec (R20.3) calls it ObjectChanged when the object's ETag moved under an annotation write.
ObjectChanged = PreconditionFailed


class LimitExceeded(StorageError):
    """A limit of the S3 API: 1,000 annotations per object version, 1 MiB payload, ..."""


class AnnotationLimitExceeded(LimitExceeded):
    code = "AnnotationLimitExceeded"


class PayloadTooLarge(LimitExceeded):
    code = "EntityTooLarge"


class InvalidAnnotationName(StorageError, InvalidInput):
    code = "InvalidAnnotationName"


class InvalidPayload(StorageError, InvalidInput):
    """Empty payload (EntityTooSmall) or not valid UTF-8 (UnsupportedMediaType)."""


class InvalidArgument(StorageError, InvalidInput):
    code = "InvalidArgument"


class MethodNotAllowed(ObjectNotFound):
    """The request targets a delete marker."""

    code = "MethodNotAllowed"


class ConflictRetry(StorageError):
    """409 OperationAborted / AnnotationRequestConflict: safe to retry."""

    code = "OperationAborted"


class Unsupported(StorageError):
    """Something the backend cannot do (e.g. annotations on SSE-C objects)."""


class BackendError(StorageError):
    """Any other error from the backend, with its code and HTTP status."""

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None, uri: str | None = None):
        super().__init__(message, code=code, uri=uri)
        self.status = status


class StoreUnusable(StorageError, InvalidInput):
    """The store cannot do what was asked as it stands: disk full, read-only, a damaged or lost
    catalogue. The message names the store and what to do (free space, ``marginalia store repair``)."""


class TransientError(StorageError):
    """Throttling, timeouts, 5xx: retry with backoff."""


# --- checkpointer / execution ----------------------------------------------------------------
class CheckpointError(MarginaliaError):
    """A checkpoint could not be read or written."""


class ThreadBusy(CheckpointError):
    """Another worker advanced this thread first: the thread is being run elsewhere."""


class ThreadDeleted(CheckpointError):
    """A write arrived for a thread that was deleted."""


# --- agents ----------------------------------------------------------------------------------
class AgentError(MarginaliaError):
    """An agent could not do its work on this input (named in the message)."""


class UnsupportedInput(AgentError, InvalidInput):
    """e.g. a recording with no transcript available, a PDF with no text layer."""


class QueryError(MarginaliaError):
    """A search query that is not valid or not read-only."""


class ThreadNotFound(InvalidInput):
    """No agent thread by that id in the thread index nor in the checkpointer."""


# --- exit statuses -----------------------------------------------------------------------------
#: The command line's exit status per kind of error: the only place that decides it. The first
#: row whose classes match wins; any other MarginaliaError is bad input (2).
BAD_INPUT, NOT_FOUND, CONFLICT, REMOTE_FAILURE = 2, 3, 4, 5
EXIT_STATUSES: tuple[tuple[int, tuple[type[BaseException], ...]], ...] = (
    (NOT_FOUND, (BucketNotFound, ObjectNotFound, AnnotationNotFound, ThreadNotFound)),
    (CONFLICT, (PreconditionFailed, ConflictRetry, ThreadBusy, ThreadDeleted)),  # or busy
    (REMOTE_FAILURE, (BackendError, TransientError)),  # the remote service failed
)


def exit_status(exc: BaseException) -> int:
    """The exit status the CLI ends with for ``exc`` (see :data:`EXIT_STATUSES`)."""
    for status, kinds in EXIT_STATUSES:
        if isinstance(exc, kinds):
            return status
    return BAD_INPUT
