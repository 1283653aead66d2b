"""Amazon Transcribe for a recording in S3, as a :class:`~marginalia.schemas.Transcript`.

:func:`transcribe_object` runs one batch job and waits for it. It is safe to re-run: the job name
is derived from the object's bucket, key and ETag, so a graph node that is retried (or a run that
is resumed after a crash) finds the job it started before (``ConflictException``) and goes on
waiting for it instead of paying for a second transcription; a changed recording gets a new job.
The output JSON is written next to the recording under ``MARGINALIA_TRANSCRIBE_PREFIX``
(default ``.marginalia/transcribe/``) in the same bucket, read back through S3, and parsed by
:func:`marginalia.tools.transcripts.parse_transcript` (speaker labels and timestamps kept).

Failures are errors of the Marginalia hierarchy naming the object: a media format Transcribe does
not accept is :class:`~marginalia.errors.UnsupportedInput` before any AWS call; a FAILED job is an
:class:`~marginalia.errors.AgentError` with Transcribe's reason (the failed job is deleted so that
running again starts afresh); waiting longer than ``timeout`` is :class:`TranscriptionTimeout`
(running again resumes the same job). Throttling and 5xx errors are raised as botocore raised them,
for the node's :data:`~marginalia.tools.retry.S3_RETRY`/``LLM_RETRY`` policy.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, NoReturn
from urllib.parse import unquote, urlparse

from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError

from ..errors import AgentError, ConfigurationError, ObjectNotFound, UnsupportedInput
from ..schemas import Transcript
from ..settings import current
from .transcripts import parse_transcript

__all__ = [
    "DEFAULT_OUTPUT_PREFIX",
    "SUPPORTED_MEDIA",
    "Backoff",
    "TranscriptionTimeout",
    "transcribe_object",
    "transcription_job_name",
]

#: File extensions of the formats Amazon Transcribe accepts (its ``MediaFormat`` values:
#: amr, flac, m4a, mp3, mp4, ogg, webm, wav; Opus audio comes in an Ogg container).
SUPPORTED_MEDIA = {
    ".amr": "amr",
    ".flac": "flac",
    ".m4a": "m4a",
    ".mp3": "mp3",
    ".mp4": "mp4",
    ".ogg": "ogg",
    ".opus": "ogg",
    ".webm": "webm",
    ".wav": "wav",
}
DEFAULT_OUTPUT_PREFIX = ".marginalia/transcribe/"
#: Transcribe accepts 2-30 speakers for diarisation.
MAX_SPEAKERS_RANGE = (2, 30)
_JOB_NAME_UNSAFE = re.compile(r"[^0-9a-zA-Z._-]+")


class TranscriptionTimeout(AgentError):
    """The job is still running after ``timeout`` seconds; running again resumes waiting for it."""


@dataclass(frozen=True)
class Backoff:
    """Delays between polls: ``initial``, then times ``factor``, never more than ``maximum``.

    A 10-minute recording takes Transcribe a few minutes; polling every 2 s at first and at most
    every 30 s finds it done soon after without flooding ``GetTranscriptionJob``.
    """

    initial: float = 2.0
    factor: float = 1.5
    maximum: float = 30.0

    def delays(self) -> Iterator[float]:
        delay = self.initial
        while True:
            yield delay
            delay = min(delay * self.factor, self.maximum)


def transcription_job_name(bucket: str, key: str, etag: str) -> str:
    """Deterministic, valid job name: readable stem of the key plus a hash of bucket/key/ETag."""
    digest = hashlib.sha256(f"{bucket}\0{key}\0{etag.strip(chr(34))}".encode()).hexdigest()[:32]
    stem = _JOB_NAME_UNSAFE.sub("-", PurePosixPath(key).name).strip("-.")[:80]
    return f"marginalia-{stem}-{digest}" if stem else f"marginalia-{digest}"


def _media_format(bucket: str, key: str) -> str:
    suffix = PurePosixPath(key).suffix.lower()
    try:
        return SUPPORTED_MEDIA[suffix]
    except KeyError:
        formats = ", ".join(sorted(SUPPORTED_MEDIA))
        raise UnsupportedInput(
            f"s3://{bucket}/{key}: Amazon Transcribe cannot transcribe '{suffix or 'a file without extension'}' "
            f"files; supported: {formats}",
            uri=f"s3://{bucket}/{key}",
        ) from None


def _output_prefix(prefix: str | None) -> str:
    prefix = prefix if prefix is not None else current().transcribe_prefix
    prefix = prefix.lstrip("/")
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def _error(exc: ClientError) -> tuple[str, str, int | None]:
    err = exc.response.get("Error", {})
    return (
        str(err.get("Code", "")),
        str(err.get("Message", "")),
        exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode"),
    )


def _clients(client: Any, s3_client: Any) -> tuple[Any, Any]:
    if client is not None and s3_client is not None:
        return client, s3_client
    import boto3

    try:
        return client or boto3.client("transcribe"), s3_client or boto3.client("s3")
    except NoRegionError:
        raise ConfigurationError(
            "Amazon Transcribe needs an AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), e.g. AWS_REGION=us-east-1"
        ) from None


def _output_location(job: dict, default: tuple[str, str]) -> tuple[str, str]:
    """Where the job wrote its transcript, from ``TranscriptFileUri`` (it may be an older job)."""
    uri = (job.get("Transcript") or {}).get("TranscriptFileUri") or ""
    parsed = urlparse(uri)
    if parsed.scheme == "s3":
        return parsed.netloc, unquote(parsed.path.lstrip("/"))
    host, path = parsed.hostname or "", unquote(parsed.path.lstrip("/"))
    if parsed.scheme == "https" and path and (host.startswith("s3.") or host.startswith("s3-")):
        bucket, _, key = path.partition("/")  # path style: https://s3.<region>.amazonaws.com/<bucket>/<key>
        if bucket and key:
            return bucket, key
    if parsed.scheme == "https" and ".s3." in host and path and not parsed.query:
        return host.split(".s3.", 1)[0], path  # virtual-hosted style
    return default


def transcribe_object(
    bucket: str,
    key: str,
    *,
    client: Any = None,
    s3_client: Any = None,
    language_code: str | None = None,
    speakers: bool = True,
    max_speakers: int = 10,
    output_prefix: str | None = None,
    poll: Backoff = Backoff(),
    timeout: float = 3600.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Transcript:
    """Transcribe ``s3://bucket/key`` with Amazon Transcribe and return its transcript.

    ``language_code`` (e.g. ``en-US``) or, when None, Transcribe identifies the language.
    ``speakers`` turns on speaker diarisation (up to ``max_speakers``). ``client``/``s3_client``
    are boto3 clients (default: new ones from the environment). ``poll`` spaces the status
    checks, ``timeout`` bounds the total wait in seconds, ``sleep`` is injectable for tests.
    """
    uri = f"s3://{bucket}/{key}"
    _media_format(bucket, key)
    low, high = MAX_SPEAKERS_RANGE
    if speakers and not low <= max_speakers <= high:
        raise UnsupportedInput(f"{uri}: max_speakers must be between {low} and {high}, got {max_speakers}", uri=uri)
    transcribe, s3 = _clients(client, s3_client)
    try:
        return _run(
            uri,
            bucket,
            key,
            transcribe,
            s3,
            language_code,
            speakers,
            max_speakers,
            _output_prefix(output_prefix),
            poll,
            timeout,
            sleep,
        )
    except NoCredentialsError:
        raise ConfigurationError(
            f"{uri}: no AWS credentials for Amazon Transcribe (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
        ) from None


def _run(
    uri, bucket, key, transcribe, s3, language_code, speakers, max_speakers, prefix, poll, timeout, sleep
) -> Transcript:
    etag = _head_etag(s3, bucket, key, uri)
    job_name = transcription_job_name(bucket, key, etag)
    output_key = f"{prefix}{job_name}.json"
    request: dict[str, Any] = {
        "TranscriptionJobName": job_name,
        "Media": {"MediaFileUri": uri},
        "OutputBucketName": bucket,
        "OutputKey": output_key,
    }
    if language_code:
        request["LanguageCode"] = language_code
    else:
        request["IdentifyLanguage"] = True
    if speakers:
        request["Settings"] = {"ShowSpeakerLabels": True, "MaxSpeakerLabels": max_speakers}
    try:
        job = transcribe.start_transcription_job(**request)["TranscriptionJob"]
    except ClientError as exc:
        code, message, _ = _error(exc)
        if code != "ConflictException":
            _raise_permanent(exc, uri, "could not start an Amazon Transcribe job")
        # Our job exists already: this is a retry or a resumed run. Pick it up where it is.
        job = _get_job(transcribe, job_name, uri)

    job = _wait(transcribe, job, job_name, uri, poll, timeout, sleep)
    out_bucket, out_key = _output_location(job, (bucket, output_key))
    data = _get_object(s3, out_bucket, out_key, f"{uri} (Transcribe output)")
    transcript = parse_transcript(data, filename=f"s3://{out_bucket}/{out_key}")
    if transcript.language is None and job.get("LanguageCode"):
        transcript.language = job["LanguageCode"]
    return transcript


def _wait(transcribe, job: dict, job_name: str, uri: str, poll: Backoff, timeout: float, sleep) -> dict:
    waited = 0.0
    delays = poll.delays()
    while True:
        status = job.get("TranscriptionJobStatus")
        if status == "COMPLETED":
            return job
        if status == "FAILED":
            reason = job.get("FailureReason") or "no reason given"
            try:  # so that running again starts a fresh job rather than finding this failed one
                transcribe.delete_transcription_job(TranscriptionJobName=job_name)
            except ClientError:
                pass
            raise AgentError(f"{uri}: Amazon Transcribe job {job_name} failed: {reason}", uri=uri)
        if waited >= timeout:
            raise TranscriptionTimeout(
                f"{uri}: Amazon Transcribe job {job_name} is still {status} after {waited:.0f} s "
                f"(timeout {timeout:.0f} s); running again resumes waiting for the same job",
                uri=uri,
            )
        delay = min(next(delays), max(timeout - waited, 0.0))
        sleep(delay)
        waited += delay
        job = _get_job(transcribe, job_name, uri)


def _get_job(transcribe, job_name: str, uri: str) -> dict:
    try:
        return transcribe.get_transcription_job(TranscriptionJobName=job_name)["TranscriptionJob"]
    except ClientError as exc:
        _raise_permanent(exc, uri, f"could not read Amazon Transcribe job {job_name}")


def _head_etag(s3, bucket: str, key: str, uri: str) -> str:
    try:
        return s3.head_object(Bucket=bucket, Key=key)["ETag"]
    except ClientError as exc:
        _raise_permanent(exc, uri, "could not read the recording")


def _get_object(s3, bucket: str, key: str, what: str) -> bytes:
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        _raise_permanent(exc, what, f"could not read s3://{bucket}/{key}")


def _raise_permanent(exc: ClientError, uri: str, doing: str) -> NoReturn:
    """Re-raise transient errors untouched (for retry policies); name the object in the others."""
    from .retry import is_transient

    if is_transient(exc):
        raise exc
    code, message, status = _error(exc)
    detail = f"{uri}: {doing}: {code or status}: {message}".rstrip(": ")
    if code in {"NoSuchKey", "NotFound", "NoSuchBucket"} or status == 404:
        raise ObjectNotFound(detail, uri=uri) from exc
    if code in {"AccessDenied", "AccessDeniedException", "UnrecognizedClientException", "Forbidden"} or status == 403:
        raise ConfigurationError(detail + " (check the IAM permissions of these credentials)") from exc
    raise AgentError(detail, uri=uri) from exc
