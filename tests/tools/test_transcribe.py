"""Amazon Transcribe adapter: Transcribe through botocore's Stubber on a real client (requests are
validated against the service model), S3 on the project's moto-based test server, and a
hand-written output in Transcribe's JSON format (tests/fixtures/transcribe)."""

from __future__ import annotations

import datetime as dt
import json
import operator
import re
import uuid
from pathlib import Path
from typing import Annotated, TypedDict

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from langgraph.graph import END, START, StateGraph

from marginalia.errors import AgentError, ObjectNotFound, UnsupportedInput
from marginalia.tools.retry import S3_RETRY
from marginalia.tools.transcribe import (
    DEFAULT_OUTPUT_PREFIX,
    Backoff,
    TranscriptionTimeout,
    _output_location,
    transcribe_object,
    transcription_job_name,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "transcribe" / "budget-meeting.json"
REGION = "us-east-1"
NOW = dt.datetime(2024, 3, 14, 9, 30, tzinfo=dt.UTC)


@pytest.fixture
def s3(s3_server):
    return s3_server.client()


@pytest.fixture
def recording(s3):
    """A fresh bucket with a 'recording' in it (the bytes do not matter: Transcribe is stubbed)."""
    bucket = f"rec-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    key = "meetings/2024-03-14 budget review.mp3"
    s3.put_object(Bucket=bucket, Key=key, Body=b"ID3\x04fake-mp3-frames")
    etag = s3.head_object(Bucket=bucket, Key=key)["ETag"]
    return bucket, key, etag


@pytest.fixture
def transcribe():
    client = boto3.client("transcribe", region_name=REGION)
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def job(name: str, status: str, *, bucket: str = "", output_key: str = "", reason: str | None = None, **extra) -> dict:
    body = {
        "TranscriptionJobName": name,
        "TranscriptionJobStatus": status,
        "CreationTime": NOW,
        "Media": {"MediaFileUri": "s3://placeholder/x.mp3"},
        **extra,
    }
    if status == "COMPLETED":
        body["Transcript"] = {"TranscriptFileUri": f"https://s3.{REGION}.amazonaws.com/{bucket}/{output_key}"}
        body["LanguageCode"] = "en-US"
    if reason:
        body["FailureReason"] = reason
    return {"TranscriptionJob": body}


class TranscribeWritesOutput:
    """The ``sleep`` given to transcribe_object: records delays and, at the n-th wait, writes the
    output JSON where Transcribe would (as if the job finished while we waited)."""

    def __init__(self, s3, bucket: str, key: str, *, at: int):
        self.s3, self.bucket, self.key, self.at = s3, bucket, key, at
        self.delays: list[float] = []

    def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if len(self.delays) == self.at:
            self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=FIXTURE.read_bytes())


def test_job_runs_polls_with_backoff_and_parses_speakers(recording, s3, transcribe):
    bucket, key, etag = recording
    client, stubber = transcribe
    name = transcription_job_name(bucket, key, etag)
    out_key = f"{DEFAULT_OUTPUT_PREFIX}{name}.json"
    stubber.add_response(
        "start_transcription_job",
        job(name, "QUEUED"),
        {
            "TranscriptionJobName": name,
            "Media": {"MediaFileUri": f"s3://{bucket}/{key}"},
            "OutputBucketName": bucket,
            "OutputKey": out_key,
            "IdentifyLanguage": True,
            "Settings": {"ShowSpeakerLabels": True, "MaxSpeakerLabels": 10},
        },
    )
    for status in ("QUEUED", "IN_PROGRESS"):
        stubber.add_response("get_transcription_job", job(name, status), {"TranscriptionJobName": name})
    stubber.add_response(
        "get_transcription_job",
        job(name, "COMPLETED", bucket=bucket, output_key=out_key),
        {"TranscriptionJobName": name},
    )
    sleep = TranscribeWritesOutput(s3, bucket, out_key, at=3)

    transcript = transcribe_object(bucket, key, client=client, s3_client=s3, poll=Backoff(2.0, 1.5, 4.0), sleep=sleep)

    assert sleep.delays == [2.0, 3.0, 4.0]
    assert transcript.source_format == "transcribe-json" and transcript.language == "en-US"
    assert transcript.speakers == ["spk_0", "spk_1"]
    assert [s.speaker for s in transcript.segments] == ["spk_0", "spk_1", "spk_0", "spk_1"]
    assert transcript.segments[2].start == pytest.approx(10.87)
    assert "send the plan by Friday?" in transcript.segments[2].text


def test_language_and_no_diarisation_shape_the_request(recording, s3, transcribe):
    bucket, key, etag = recording
    client, stubber = transcribe
    name = transcription_job_name(bucket, key, etag)
    out_key = f"custom/{name}.json"
    s3.put_object(Bucket=bucket, Key=out_key, Body=FIXTURE.read_bytes())
    stubber.add_response(
        "start_transcription_job",
        job(name, "COMPLETED", bucket=bucket, output_key=out_key),
        {
            "TranscriptionJobName": name,
            "Media": {"MediaFileUri": f"s3://{bucket}/{key}"},
            "OutputBucketName": bucket,
            "OutputKey": out_key,
            "LanguageCode": "en-GB",
        },
    )
    transcript = transcribe_object(
        bucket,
        key,
        client=client,
        s3_client=s3,
        language_code="en-GB",
        speakers=False,
        output_prefix="custom",
        sleep=pytest.fail,
    )
    assert len(transcript.segments) == 4


def test_a_retried_call_resumes_the_existing_job(recording, s3, transcribe):
    bucket, key, etag = recording
    client, stubber = transcribe
    name = transcription_job_name(bucket, key, etag)
    out_key = f"{DEFAULT_OUTPUT_PREFIX}{name}.json"
    s3.put_object(Bucket=bucket, Key=out_key, Body=FIXTURE.read_bytes())
    stubber.add_client_error(
        "start_transcription_job",
        service_error_code="ConflictException",
        service_message="The requested job name already exists. Use a different job name.",
        http_status_code=409,
    )
    stubber.add_response(
        "get_transcription_job",
        job(name, "COMPLETED", bucket=bucket, output_key=out_key),
        {"TranscriptionJobName": name},
    )
    transcript = transcribe_object(bucket, key, client=client, s3_client=s3, sleep=pytest.fail)
    assert transcript.segments[0].text.startswith("Good morning everyone.")


def test_graph_node_retry_after_throttling_does_not_start_a_second_job(recording, s3, transcribe):
    bucket, key, etag = recording
    client, stubber = transcribe
    name = transcription_job_name(bucket, key, etag)
    out_key = f"{DEFAULT_OUTPUT_PREFIX}{name}.json"
    s3.put_object(Bucket=bucket, Key=out_key, Body=FIXTURE.read_bytes())
    stubber.add_response("start_transcription_job", job(name, "QUEUED"))
    stubber.add_client_error(
        "get_transcription_job",
        service_error_code="LimitExceededException",
        service_message="Rate exceeded",
        http_status_code=400,
    )
    stubber.add_client_error("start_transcription_job", service_error_code="ConflictException", http_status_code=409)
    stubber.add_response("get_transcription_job", job(name, "COMPLETED", bucket=bucket, output_key=out_key))

    class State(TypedDict):
        segments: Annotated[list[str], operator.add]

    attempts = []

    def node(state: State):
        attempts.append(1)
        t = transcribe_object(bucket, key, client=client, s3_client=s3, sleep=lambda _: None)
        return {"segments": [s.text for s in t.segments]}

    builder = StateGraph(State)
    builder.add_node("transcribe", node, retry_policy=S3_RETRY._replace(initial_interval=0.001, jitter=False))
    builder.add_edge(START, "transcribe")
    builder.add_edge("transcribe", END)
    result = builder.compile().invoke({"segments": []})
    assert len(attempts) == 2 and len(result["segments"]) == 4


def test_failed_job_is_a_clear_error_and_is_deleted(recording, s3, transcribe):
    bucket, key, etag = recording
    client, stubber = transcribe
    name = transcription_job_name(bucket, key, etag)
    reason = "The media format that you specified doesn't match the detected media format."
    stubber.add_response("start_transcription_job", job(name, "IN_PROGRESS"))
    stubber.add_response("get_transcription_job", job(name, "FAILED", reason=reason))
    stubber.add_response("delete_transcription_job", {}, {"TranscriptionJobName": name})
    with pytest.raises(
        AgentError, match=re.escape(f"s3://{bucket}/{key}: Amazon Transcribe job {name} failed: {reason}")
    ):
        transcribe_object(bucket, key, client=client, s3_client=s3, sleep=lambda _: None)


def test_timeout_while_the_job_runs(recording, s3, transcribe):
    bucket, key, _ = recording
    client, stubber = transcribe
    stubber.add_response("start_transcription_job", job("n", "QUEUED"))
    for _ in range(3):
        stubber.add_response("get_transcription_job", job("n", "IN_PROGRESS"))
    delays = []
    with pytest.raises(TranscriptionTimeout, match=r"still IN_PROGRESS after 10 s .*resumes waiting for the same job"):
        transcribe_object(
            bucket, key, client=client, s3_client=s3, poll=Backoff(2, 2, 8), timeout=10, sleep=delays.append
        )
    assert delays == [2, 4, 4]  # the last wait is cut to the time left


@pytest.mark.parametrize("key", ["notes.txt", "slides.pdf", "video.mov", "recording"])
def test_unsupported_media_fails_before_any_aws_call(key):
    client = boto3.client("transcribe", region_name=REGION)
    s3 = boto3.client("s3", region_name=REGION)
    with Stubber(client), Stubber(s3):  # nothing queued: any call would raise
        with pytest.raises(UnsupportedInput, match=r"Amazon Transcribe cannot transcribe .* supported: \.amr, \.flac"):
            transcribe_object("bucket", key, client=client, s3_client=s3)


def test_missing_recording_is_object_not_found(s3, transcribe):
    client, _ = transcribe
    bucket = f"rec-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    with pytest.raises(ObjectNotFound, match=f"s3://{bucket}/absent.wav: could not read the recording"):
        transcribe_object(bucket, "absent.wav", client=client, s3_client=s3)


def test_bad_request_is_an_agent_error_naming_the_object(recording, s3, transcribe):
    bucket, key, _ = recording
    client, stubber = transcribe
    stubber.add_client_error(
        "start_transcription_job",
        service_error_code="BadRequestException",
        service_message="The S3 URI that you provided can't be accessed.",
        http_status_code=400,
    )
    with pytest.raises(AgentError, match=r"could not start an Amazon Transcribe job: BadRequestException: The S3 URI"):
        transcribe_object(bucket, key, client=client, s3_client=s3)


def test_throttling_is_raised_untouched_for_the_retry_policy(recording, s3, transcribe):
    bucket, key, _ = recording
    client, stubber = transcribe
    stubber.add_client_error(
        "start_transcription_job", service_error_code="LimitExceededException", http_status_code=400
    )
    with pytest.raises(ClientError) as info:
        transcribe_object(bucket, key, client=client, s3_client=s3)
    assert info.value.response["Error"]["Code"] == "LimitExceededException"


def test_job_name_is_deterministic_valid_and_follows_the_content():
    pattern = re.compile(r"^[0-9a-zA-Z._-]+$")
    a = transcription_job_name("b", "meetings/ünïcode name (1).mp3", '"etag1"')
    assert a == transcription_job_name("b", "meetings/ünïcode name (1).mp3", "etag1")  # quotes do not matter
    assert a != transcription_job_name("b", "meetings/ünïcode name (1).mp3", '"etag2"')
    assert a != transcription_job_name("other", "meetings/ünïcode name (1).mp3", '"etag1"')
    long = transcription_job_name("b", "x" * 1000 + ".wav", "e")
    for name in (a, long, transcription_job_name("b", "....mp3", "e")):
        assert pattern.match(name) and len(name) <= 200


def test_changed_recording_gets_a_new_job(recording, s3):
    bucket, key, etag = recording
    s3.put_object(Bucket=bucket, Key=key, Body=b"ID3\x04other-frames")
    new_etag = s3.head_object(Bucket=bucket, Key=key)["ETag"]
    assert new_etag != etag
    assert transcription_job_name(bucket, key, new_etag) != transcription_job_name(bucket, key, etag)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (
            "https://s3.us-east-1.amazonaws.com/my-bucket/.marginalia/transcribe/j.json",
            ("my-bucket", ".marginalia/transcribe/j.json"),
        ),
        ("https://my-bucket.s3.eu-west-1.amazonaws.com/out/j%20x.json", ("my-bucket", "out/j x.json")),
        ("s3://my-bucket/out/j.json", ("my-bucket", "out/j.json")),
        (
            "https://s3.amazonaws.com/aws-transcribe-us-east-1-prod/123/j/asrOutput.json?X-Amz-Signature=abc",
            ("aws-transcribe-us-east-1-prod", "123/j/asrOutput.json"),
        ),
        ("", ("default", "key.json")),
    ],
)
def test_output_location(uri, expected):
    job_body = {"Transcript": {"TranscriptFileUri": uri}} if uri else {}
    assert _output_location(job_body, ("default", "key.json")) == expected


def test_fixture_is_transcribe_json_with_speaker_labels():
    doc = json.loads(FIXTURE.read_text())
    results = doc["results"]
    assert results["speaker_labels"]["speakers"] == 2
    assert {item["type"] for item in results["items"]} == {"pronunciation", "punctuation"}
