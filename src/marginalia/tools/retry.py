"""Which failures a graph node may retry, declared once as LangGraph ``RetryPolicy`` objects.

A node that calls a model or S3 is attached with ``builder.add_node(name, fn, retry_policy=LLM_RETRY)``;
LangGraph then re-runs *only that node* on a transient failure, the rest of the graph's progress
(checkpointed) is kept. What counts as transient is decided in one place, :func:`is_transient`:

* botocore ``ClientError`` whose code botocore itself classifies as throttling or transient
  (its standard retry mode's lists: ``Throttling``, ``ThrottlingException``, ``SlowDown``,
  ``RequestTimeout``, ``LimitExceededException``, ...) plus the 5xx codes services use
  (``InternalError``, ``ServiceUnavailable``, Bedrock's ``ModelTimeoutException`` ...) and any
  HTTP status 429/5xx;
* botocore connection and read timeouts (``botocore.exceptions.ConnectionError``,
  ``HTTPClientError``) and Python's own ``TimeoutError``/``ConnectionError``;
* Marginalia's own :class:`~marginalia.errors.TransientError` and
  :class:`~marginalia.errors.ConflictRetry`;
* errors of other LangChain chat-model clients that carry an HTTP ``status_code`` of 429/5xx
  (OpenAI/Anthropic SDKs), and wrapped errors whose ``__cause__`` is one of the above.

Every other :class:`~marginalia.errors.MarginaliaError` (bad input, unsupported media, a model
that would not answer in the schema, ...) is permanent: retrying would only repeat it.
"""

from __future__ import annotations

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError
from botocore.retries.standard import RetryContext, ThrottledRetryableChecker, TransientRetryableChecker
from langgraph.types import RetryPolicy

from ..errors import ConflictRetry, MarginaliaError, TransientError

__all__ = ["LLM_RETRY", "S3_RETRY", "TRANSIENT_ERROR_CODES", "TRANSIENT_STATUS_CODES", "is_transient"]

#: Error codes not in botocore's generic lists that AWS services use for a server-side hiccup.
#: (Bedrock: ModelTimeout/ModelNotReady/InternalServer/ServiceUnavailable; S3: InternalError,
#: ServiceUnavailable, OperationAborted (409 conflict, "try again"); Transcribe: InternalFailure.)
TRANSIENT_ERROR_CODES = frozenset(
    {
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "InternalServerException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "ModelTimeoutException",
        "ModelNotReadyException",
        "ModelStreamErrorException",
        "OperationAborted",
        "RequestTimeTooSkewed",
    }
)
TRANSIENT_STATUS_CODES = frozenset({429, 500, 502, 503, 504})

_THROTTLED = ThrottledRetryableChecker()
_TRANSIENT = TransientRetryableChecker()


def _code_variants(code: str) -> set[str]:
    # Bedrock's event streams (ConverseStream) report ``throttlingException``; the
    # request/response API reports ``ThrottlingException``: treat both alike.
    return {code, code[:1].upper() + code[1:]}


def _client_error_is_transient(exc: ClientError) -> bool:
    response = exc.response or {}
    code = str(response.get("Error", {}).get("Code") or "")
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    for variant in _code_variants(code):
        context = RetryContext(attempt_number=1, parsed_response={"Error": {"Code": variant}})
        if _THROTTLED.is_retryable(context) or _TRANSIENT.is_retryable(context):
            return True
        if variant in TRANSIENT_ERROR_CODES:
            return True
    return status in TRANSIENT_STATUS_CODES


def _is_transient_one(exc: BaseException) -> bool | None:
    """True/False when ``exc`` itself decides; None to look at its cause."""
    if isinstance(exc, (TransientError, ConflictRetry)):
        return True
    if isinstance(exc, MarginaliaError):
        return False  # permanent by construction: bad input, unsupported, agent failure ...
    if isinstance(exc, ClientError):
        return _client_error_is_transient(exc)
    if isinstance(exc, (BotocoreConnectionError, HTTPClientError, TimeoutError, ConnectionError)):
        return True
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status in TRANSIENT_STATUS_CODES
    return None


def is_transient(exc: BaseException) -> bool:
    """Whether retrying the operation that raised ``exc`` may succeed (throttling, timeout, 5xx)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        verdict = _is_transient_one(current)
        if verdict is not None:
            return verdict
        current = current.__cause__ or current.__context__
    return False


#: Model calls: throttling on Bedrock clears in seconds to a minute; give it room.
LLM_RETRY = RetryPolicy(
    initial_interval=2.0, backoff_factor=2.0, max_interval=30.0, max_attempts=5, jitter=True, retry_on=is_transient
)
#: S3 calls: SlowDown/503 clear fast; botocore already retried inside each call.
S3_RETRY = RetryPolicy(
    initial_interval=0.5, backoff_factor=2.0, max_interval=8.0, max_attempts=4, jitter=True, retry_on=is_transient
)
