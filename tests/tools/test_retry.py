"""The retry policy: which real botocore/Marginalia errors are transient, and that LangGraph
re-runs only the failing node."""

from __future__ import annotations

import operator
from typing import Annotated, TypedDict

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    EventStreamError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)
from langgraph.graph import END, START, StateGraph

from marginalia.errors import (
    AgentError,
    ConflictRetry,
    InvalidInput,
    ObjectNotFound,
    PreconditionFailed,
    TransientError,
    UnsupportedInput,
)
from marginalia.tools.retry import LLM_RETRY, S3_RETRY, is_transient


def client_error(code: str, status: int, op: str = "Converse") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": f"{code} happened"}, "ResponseMetadata": {"HTTPStatusCode": status}}, op
    )


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ThrottlingException", 429),  # Bedrock
        ("Throttling", 400),
        ("SlowDown", 503),  # S3
        ("RequestTimeout", 400),  # S3
        ("ServiceUnavailable", 503),
        ("InternalError", 500),
        ("ModelTimeoutException", 408),  # Bedrock
        ("ServiceUnavailableException", 503),
        ("LimitExceededException", 400),  # Transcribe's throttling
        ("SomethingNew", 502),  # any 5xx
    ],
)
def test_throttling_timeouts_and_5xx_client_errors_are_transient(code, status):
    assert is_transient(client_error(code, status))


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("AccessDenied", 403),
        ("NoSuchKey", 404),
        ("ValidationException", 400),  # Bedrock: bad request, never succeeds on retry
        ("ConflictException", 409),  # Transcribe: job name taken: handled, not retried
        ("PreconditionFailed", 412),
    ],
)
def test_client_errors_that_a_retry_cannot_fix_are_permanent(code, status):
    assert not is_transient(client_error(code, status))


def test_streaming_throttle_with_lowercase_code_is_transient():
    # ConverseStream reports errors inside the event stream as EventStreamError.
    err = EventStreamError({"Error": {"Code": "throttlingException", "Message": "slow down"}}, "ConverseStream")
    assert is_transient(err)


@pytest.mark.parametrize(
    "exc",
    [
        EndpointConnectionError(endpoint_url="https://bedrock-runtime.us-east-1.amazonaws.com"),
        ConnectTimeoutError(endpoint_url="https://s3.amazonaws.com"),
        ReadTimeoutError(endpoint_url="https://s3.amazonaws.com"),
        TimeoutError("socket timed out"),
        TransientError("s3://b/k: SlowDown"),
        ConflictRetry("s3://b/k: OperationAborted"),
    ],
)
def test_connection_and_marginalia_transient_errors_are_transient(exc):
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        InvalidInput("bad uri"),
        UnsupportedInput("s3://b/k.xyz: not a media format"),
        ObjectNotFound("s3://b/k"),
        PreconditionFailed("s3://b/k"),
        AgentError("model did not answer"),
        NoCredentialsError(),
        ParamValidationError(report="bad"),
        ValueError("boom"),
    ],
)
def test_permanent_errors_are_not_retried(exc):
    assert not is_transient(exc)


def test_wrapped_transient_error_is_found_through_its_cause():
    try:
        try:
            raise client_error("ThrottlingException", 429)
        except ClientError as inner:
            raise ValueError("Error raised by bedrock service") from inner
    except ValueError as outer:
        assert is_transient(outer)


def test_a_permanent_marginalia_error_wins_over_a_transient_cause():
    err = InvalidInput("bad")
    err.__cause__ = TimeoutError()
    assert not is_transient(err)


def test_http_status_of_other_sdks():
    class RateLimitError(Exception):
        status_code = 429

    class BadRequestError(Exception):
        status_code = 400

    assert is_transient(RateLimitError())
    assert not is_transient(BadRequestError())


def test_policies_use_is_transient():
    assert LLM_RETRY.retry_on is is_transient and S3_RETRY.retry_on is is_transient
    assert LLM_RETRY.max_attempts >= 3 and S3_RETRY.max_attempts >= 3


class State(TypedDict):
    log: Annotated[list[str], operator.add]


def build_graph(flaky_errors: list[BaseException], policy):
    calls = {"prepare": 0, "flaky": 0}

    def prepare(state: State):
        calls["prepare"] += 1
        return {"log": ["prepare"]}

    def flaky(state: State):
        calls["flaky"] += 1
        if flaky_errors:
            raise flaky_errors.pop(0)
        return {"log": ["flaky"]}

    builder = StateGraph(State)
    builder.add_node("prepare", prepare)
    builder.add_node("flaky", flaky, retry_policy=policy)
    builder.add_edge(START, "prepare")
    builder.add_edge("prepare", "flaky")
    builder.add_edge("flaky", END)
    return builder.compile(), calls


def fast(policy):
    return policy._replace(initial_interval=0.001, max_interval=0.002, jitter=False)


@pytest.mark.parametrize("policy", [LLM_RETRY, S3_RETRY], ids=["llm", "s3"])
def test_graph_retries_only_the_failing_node(policy):
    errors = [client_error("ThrottlingException", 429), ReadTimeoutError(endpoint_url="https://x")]
    graph, calls = build_graph(errors, fast(policy))
    result = graph.invoke({"log": []})
    assert calls == {"prepare": 1, "flaky": 3}
    assert result["log"] == ["prepare", "flaky"]


def test_graph_does_not_retry_a_permanent_error():
    graph, calls = build_graph([UnsupportedInput("s3://b/k.txt: not audio")], fast(LLM_RETRY))
    with pytest.raises(UnsupportedInput):
        graph.invoke({"log": []})
    assert calls == {"prepare": 1, "flaky": 1}


def test_graph_gives_up_after_max_attempts():
    policy = fast(S3_RETRY)
    errors = [client_error("SlowDown", 503, "GetObject") for _ in range(policy.max_attempts + 1)]
    graph, calls = build_graph(errors, policy)
    with pytest.raises(ClientError):
        graph.invoke({"log": []})
    assert calls["flaky"] == policy.max_attempts
