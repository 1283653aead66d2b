"""A local S3 server for tests that is not a lie about S3 Annotations (spec §19.2, option A).

Why this exists: moto 5.2.5 has no annotation code. It routes ``?annotation`` requests to the plain
object operations, so PutObjectAnnotation *overwrites the object*, DeleteObjectAnnotation *deletes
it*, and the calls still "succeed" (spec §19.1, M1-M5). Tests run against bare moto would pass or
fail for the wrong reasons.

So this module serves moto's own WSGI app (``DomainDispatcherApplication(create_backend_app)``,
what ``ThreadedMotoServer`` builds internally) behind :class:`AnnotationMiddleware`, which

* answers every ``?annotation`` request on an object from its own annotation state, following the
  spec (§2-§8, §12, §14): S3 XML bodies and error documents, status codes, checksum headers,
  ``x-amz-object-version-id``, ``aws-chunked`` request bodies; it validates with
  :mod:`marginalia.storage.rules`, the same validator the local backend uses (parity);
* passes everything else to moto and then applies the object-lifecycle side effects (§11, §13):
  a new version starts without annotations, CopyObject copies them unless the directive says
  EXCLUDE, deleting a version deletes its annotations, a delete marker keeps them;
* counts requests by S3 operation (``PutObject``, ``GetObjectAnnotation``, ...) so benchmarks can
  report how many requests a component makes.

Annotations are tied to moto's version objects by identity: an entry is valid only while the exact
``FakeKey`` it was written on is still the object's version. Any operation that replaces or removes
a version (including ones this module does not know by name) therefore drops its annotations, which
is R11.2-R11.5; the explicit pruning after mutating requests only frees memory.

moto keeps its state per *process*, so every server started in one process sees the same buckets;
the annotation state is process-wide too (consistently). :meth:`TestS3Server.reset` removes only the
buckets created through that server; :meth:`TestS3Server.reset_all` clears everything.
Uses moto internals (``moto.moto_server.werkzeug_app``, ``moto.s3.models.s3_backends``): moto is
pinned ``>=5.2.5,<5.3`` by the ``testing`` extra (``pip install 'marginalia[testing]'``; without it,
importing this module is one :class:`~marginalia.extras.MissingExtra` line naming the extra).
Binds 127.0.0.1 only. Virtual-hosted-style addressing is not supported for annotation requests (clients must use path style, which :class:`~marginalia.storage.s3.S3Store`
does whenever an endpoint URL is set).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import io
import threading
import uuid
import weakref
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import unquote

from ..errors import MarginaliaError
from ..extras import requires
from ..storage import rules

with requires("testing", "marginalia.testing.s3_server (the S3 test server)"):
    import moto  # noqa: F401  (the server's parts are imported where used: moto.s3 is slow to load)
    import werkzeug  # noqa: F401

S3_XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"
DEFAULT_SERVER_CHECKSUM = "CRC64NVME"  # what S3 computes when the request carries none (R9.2)

# HTTP status of each error code this server emits (spec §12 and the usual S3 codes).
_STATUS_BY_CODE = {
    "NoSuchBucket": 404,
    "NoSuchKey": 404,
    "NoSuchVersion": 404,
    "NoSuchAnnotation": 404,
    "MethodNotAllowed": 405,
    "PreconditionFailed": 412,
    "UnsupportedMediaType": 415,
    "IncompleteBody": 400,
}


# --- errors as S3 XML (R12.1) ----------------------------------------------------------------
class S3ErrorResponse(Exception):
    """An S3 error to send back as ``<Error>`` XML with the right HTTP status."""

    def __init__(self, code: str, message: str, status: int | None = None, *, headers=None, **fields: str):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or _STATUS_BY_CODE.get(code, 400)
        self.headers = dict(headers or {})
        self.fields = {k: v for k, v in fields.items() if v is not None}

    @classmethod
    def from_error(cls, exc: MarginaliaError) -> S3ErrorResponse:
        """The wire form of a :mod:`marginalia.errors` exception raised by the shared validator."""
        code = exc.code or "InvalidRequest"
        return cls(code, str(exc))


def error_document(code: str, message: str, request_id: str, **fields: str) -> bytes:
    root = ET.Element("Error")
    for tag, text in (
        ("Code", code),
        ("Message", message),
        *fields.items(),
        ("RequestId", request_id),
        ("HostId", request_id),
    ):
        ET.SubElement(root, tag).text = text
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


# --- request classification (for counting and routing) --------------------------------------
_KEY_GET_SUBRESOURCES = {
    "uploadId": "ListParts",
    "tagging": "GetObjectTagging",
    "acl": "GetObjectAcl",
    "attributes": "GetObjectAttributes",
    "retention": "GetObjectRetention",
    "legal-hold": "GetObjectLegalHold",
}
_KEY_PUT_SUBRESOURCES = {
    "tagging": "PutObjectTagging",
    "acl": "PutObjectAcl",
    "retention": "PutObjectRetention",
    "legal-hold": "PutObjectLegalHold",
}


def _camel(subresource: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in subresource.replace("_", "-").split("-"))


def classify_request(method: str, bucket: str, key: str, query: dict[str, Any], headers: Any) -> str:
    """The S3 operation name of a request (``PutObject``, ``ListObjectsV2``, ``GetObjectAnnotation``, ...).

    Path-style only. Unknown shapes get a descriptive fallback (``GET bucket?foo``) rather than a
    guess, so counts never silently mislabel a request.
    """
    method = method.upper()
    if not bucket:
        return "ListBuckets" if method == "GET" else f"{method} /"
    if bucket == "moto-api":
        return "MotoApi"
    if key:
        if "annotation" in query:
            if method == "PUT":
                return "PutObjectAnnotation"
            if method == "DELETE":
                return "DeleteObjectAnnotation"
            if method == "GET":
                return "GetObjectAnnotation" if "annotationName" in query else "ListObjectAnnotations"
            return f"{method} ?annotation"
        copy_source = headers.get("x-amz-copy-source")
        if method == "PUT":
            if "partNumber" in query and "uploadId" in query:
                return "UploadPartCopy" if copy_source else "UploadPart"
            for sub, op in _KEY_PUT_SUBRESOURCES.items():
                if sub in query:
                    return op
            return "CopyObject" if copy_source else "PutObject"
        if method == "GET":
            for sub, op in _KEY_GET_SUBRESOURCES.items():
                if sub in query:
                    return op
            return "GetObject"
        if method == "HEAD":
            return "HeadObject"
        if method == "DELETE":
            if "uploadId" in query:
                return "AbortMultipartUpload"
            if "tagging" in query:
                return "DeleteObjectTagging"
            return "DeleteObject"
        if method == "POST":
            if "uploads" in query:
                return "CreateMultipartUpload"
            if "uploadId" in query:
                return "CompleteMultipartUpload"
            if "restore" in query:
                return "RestoreObject"
        return f"{method} object"
    # bucket-level
    if method == "POST" and "delete" in query:
        return "DeleteObjects"
    if method == "HEAD":
        return "HeadBucket"
    if method == "GET":
        if query.get("list-type") == "2":
            return "ListObjectsV2"
        if "versions" in query:
            return "ListObjectVersions"
        if "uploads" in query:
            return "ListMultipartUploads"
    subresources = [q for q in query if q not in ("prefix", "delimiter", "marker", "max-keys", "encoding-type", "x-id")]
    verb = {"GET": "Get", "PUT": "Put", "DELETE": "Delete"}.get(method)
    if verb and subresources:
        return f"{verb}Bucket{_camel(subresources[0])}"
    return {"GET": "ListObjects", "PUT": "CreateBucket", "DELETE": "DeleteBucket"}.get(method, f"{method} bucket")


# --- aws-chunked bodies (R9.3) ---------------------------------------------------------------
def decode_aws_chunked(body: bytes) -> tuple[bytes, dict[str, str]]:
    """Decode an ``aws-chunked`` body: ``<hex>[;chunk-signature=..]\\r\\n<data>\\r\\n ... 0\\r\\n<trailers>\\r\\n``.

    Returns the payload and the trailers (lower-case names, e.g. ``x-amz-checksum-crc32``).
    Raises :class:`S3ErrorResponse` ``IncompleteBody`` on a malformed or truncated body.
    """
    stream = io.BytesIO(body)
    out = bytearray()
    while True:
        line = stream.readline()
        if not line.endswith(b"\r\n"):
            raise S3ErrorResponse("IncompleteBody", "aws-chunked body ended inside a chunk header")
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise S3ErrorResponse("IncompleteBody", f"bad aws-chunked chunk header {line[:40]!r}") from None
        if size == 0:
            break
        chunk = stream.read(size)
        if len(chunk) != size or stream.read(2) != b"\r\n":
            raise S3ErrorResponse("IncompleteBody", "aws-chunked body ended inside a chunk")
        out += chunk
    trailers: dict[str, str] = {}
    for raw in stream.read().split(b"\r\n"):
        if b":" in raw:
            name, _, value = raw.decode("latin-1").partition(":")
            trailers[name.strip().lower()] = value.strip()
    return bytes(out), trailers


# --- annotation state ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StoredAnnotation:
    payload: bytes
    etag: str
    last_modified: dt.datetime
    checksum_algorithm: str
    checksum: str
    checksum_type: str = "FULL_OBJECT"


@dataclass(slots=True)
class _VersionSlot:
    """The annotations of one moto version object; valid only while ``owner`` is that version."""

    owner: weakref.ref
    annotations: dict[str, StoredAnnotation] = field(default_factory=dict)


class AnnotationState:
    """Process-wide annotations keyed by (bucket, key, version id), tied to moto's version objects."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._slots: dict[tuple[str, str, str], _VersionSlot] = {}

    def annotations(self, bucket: str, fake_key: Any, *, create: bool = False) -> dict[str, StoredAnnotation]:
        """The live annotation dict of ``fake_key`` (a moto version); a stale slot counts as empty."""
        slot_id = (bucket, fake_key.name, str(fake_key.version_id))
        slot = self._slots.get(slot_id)
        if slot is None or slot.owner() is not fake_key:
            if not create:
                return {}
            slot = self._slots[slot_id] = _VersionSlot(weakref.ref(fake_key))
        return slot.annotations

    def prune(self, bucket: str, key: str | None = None) -> None:
        """Forget slots whose version no longer exists (memory only: stale slots are never read)."""
        for slot_id in [s for s in self._slots if s[0] == bucket and (key is None or s[1] == key)]:
            owner = self._slots[slot_id].owner()
            if owner is None or _lookup_version(bucket, slot_id[1], slot_id[2]) is not owner:
                del self._slots[slot_id]

    def clear(self) -> None:
        self._slots.clear()


_STATE = AnnotationState()


# --- reading moto's state --------------------------------------------------------------------
def _moto_backend(bucket: str):
    """moto's S3 backend that owns ``bucket`` (whatever account created it), or None."""
    from moto.s3.models import s3_backends

    owner = s3_backends.bucket_accounts.get(bucket)
    if owner is None:
        return None
    partition, account_id = owner
    backend = s3_backends[account_id][partition]
    return backend if bucket in backend.buckets else None


def _lookup_version(bucket: str, key: str, version_id: str | None):
    """moto's FakeKey / FakeDeleteMarker for (bucket, key, version), or None."""
    backend = _moto_backend(bucket)
    if backend is None:
        return None
    return backend.get_object(bucket, key, version_id=version_id, return_delete_marker=True)


def _bucket_is_versioned(bucket: str) -> bool:
    backend = _moto_backend(bucket)
    return bool(backend and backend.buckets[bucket].versioning_status)


def resolve_object(bucket: str, key: str, version_id: str | None):
    """The object version an annotation request targets, or the S3 error for it (R11.6, R11.7)."""
    from moto.s3.models import FakeDeleteMarker

    if _moto_backend(bucket) is None:
        raise S3ErrorResponse("NoSuchBucket", "The specified bucket does not exist", BucketName=bucket)
    found = _lookup_version(bucket, key, version_id)
    if version_id is None:
        if found is None or isinstance(found, FakeDeleteMarker):
            raise S3ErrorResponse("NoSuchKey", "The specified key does not exist.", Key=key)
        return found
    if found is None:
        raise S3ErrorResponse("NoSuchVersion", "The specified version does not exist.", Key=key, VersionId=version_id)
    if isinstance(found, FakeDeleteMarker):
        raise S3ErrorResponse(
            "MethodNotAllowed",
            "The specified method is not allowed against this resource.",
            headers={"x-amz-delete-marker": "true", "Allow": "DELETE"},
            Method="GET",
            ResourceType="DeleteMarker",
        )
    return found


# --- the middleware --------------------------------------------------------------------------
@dataclass(slots=True)
class _Req:
    """The parts of a request this middleware needs (path style: ``/bucket/key``)."""

    method: str
    bucket: str
    key: str
    query: dict[str, str]
    headers: Any  # werkzeug EnvironHeaders (case-insensitive)
    operation: str


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso8601(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


class AnnotationMiddleware:
    """WSGI middleware: the annotation API in front of moto, plus lifecycle side effects and counts."""

    def __init__(self, app: Callable, state: AnnotationState = _STATE) -> None:
        self.app = app
        self.state = state
        self._counts: Counter[str] = Counter()
        self._counts_lock = threading.Lock()
        self.buckets_created: set[str] = set()  # through this middleware: what reset() removes

    # -- counting ----------------------------------------------------------------------------
    def request_counts(self) -> dict[str, int]:
        with self._counts_lock:
            return dict(self._counts)

    def reset_counts(self) -> None:
        with self._counts_lock:
            self._counts.clear()

    # -- WSGI --------------------------------------------------------------------------------
    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        req = _parse_request(environ)
        with self._counts_lock:
            self._counts[req.operation] += 1
        if req.key and "annotation" in req.query:
            return self._annotation_call(environ, start_response, req)
        if req.method in ("PUT", "POST", "DELETE") and req.bucket and req.bucket != "moto-api":
            return self._mutating_passthrough(environ, start_response, req)
        return self.app(environ, start_response)

    # -- the annotation API ------------------------------------------------------------------
    def _annotation_call(self, environ: dict, start_response: Callable, req: _Req) -> Iterable[bytes]:
        from werkzeug.wrappers import Response

        request_id = uuid.uuid4().hex[:16].upper()
        body = _read_body(environ) if req.method == "PUT" else b""
        try:
            with self.state.lock:
                status, headers, payload = self._dispatch(req, body)
        except MarginaliaError as exc:  # the shared validator's verdicts
            status, headers, payload = _error_triplet(S3ErrorResponse.from_error(exc), request_id, req)
        except S3ErrorResponse as err:
            status, headers, payload = _error_triplet(err, request_id, req)
        headers["x-amz-request-id"] = request_id
        if req.method == "HEAD":
            payload = b""
        return Response(payload, status=status, headers=headers)(environ, start_response)

    def _dispatch(self, req: _Req, body: bytes) -> tuple[int, dict[str, str], bytes]:
        if req.method == "PUT":
            return self._put(req, body)
        if req.method == "GET":
            return self._get(req) if "annotationName" in req.query else self._list(req)
        if req.method == "DELETE":
            return self._delete(req)
        allow = "GET" if req.method == "HEAD" else "GET, PUT, DELETE"
        raise S3ErrorResponse(
            "MethodNotAllowed",
            "The specified method is not allowed against this resource.",
            headers={"Allow": allow},
            Method=req.method,
            ResourceType="ANNOTATION",
        )

    def _version_id(self, req: _Req) -> str | None:
        if "versionId" not in req.query:
            return None
        version_id = req.query["versionId"]
        if not version_id:
            raise S3ErrorResponse(
                "InvalidArgument", "Invalid version id specified", ArgumentName="versionId", ArgumentValue=""
            )
        return version_id

    def _target(self, req: _Req, *, check_name: bool) -> tuple[Any, str]:
        """Name check before the object lookup (R12.2), then the object version and its ETag check."""
        name = req.query.get("annotationName", "")
        if check_name:
            if not _moto_backend(req.bucket):
                raise S3ErrorResponse("NoSuchBucket", "The specified bucket does not exist", BucketName=req.bucket)
            rules.validate_annotation_name(name, bucket=req.bucket, key=req.key)
        obj = resolve_object(req.bucket, req.key, self._version_id(req))
        if_match = req.headers.get("x-amz-object-if-match")
        if if_match is not None and not rules.etags_match(if_match, obj.etag):
            raise S3ErrorResponse(
                "PreconditionFailed",
                "At least one of the pre-conditions you specified did not hold",
                Condition="x-amz-object-if-match",
            )
        return obj, name

    def _version_headers(self, req: _Req, obj: Any) -> dict[str, str]:
        """``x-amz-object-version-id``, omitted for objects of a never-versioned bucket (R11.9)."""
        if obj.version_id == "null" and not _bucket_is_versioned(req.bucket):
            return {}
        return {"x-amz-object-version-id": str(obj.version_id)}

    def _put(self, req: _Req, body: bytes) -> tuple[int, dict[str, str], bytes]:
        obj, name = self._target(req, check_name=True)
        data = body
        trailers: dict[str, str] = {}
        if "aws-chunked" in req.headers.get("Content-Encoding", "") or req.headers.get(
            "x-amz-content-sha256", ""
        ).startswith("STREAMING-"):
            data, trailers = decode_aws_chunked(body)
            declared = req.headers.get("x-amz-decoded-content-length")
            if declared is not None and declared.isdigit() and int(declared) != len(data):
                raise S3ErrorResponse(
                    "IncompleteBody",
                    f"x-amz-decoded-content-length is {declared} but the body decoded to {len(data)} bytes",
                )
        uri = rules.object_uri(req.bucket, req.key)
        content_md5 = req.headers.get("Content-MD5")
        if content_md5 and rules.checksum("MD5", data) != content_md5:
            raise S3ErrorResponse("BadDigest", "The Content-MD5 you specified did not match what we received.")
        algorithm, value = _request_checksum(req.headers, trailers)
        if algorithm is not None and value is not None:  # a value always comes with its algorithm
            rules.verify_checksum(algorithm, value, data, uri=uri)
        data = rules.payload_bytes(data, bucket=req.bucket, key=req.key, name=name)
        algorithm = algorithm or DEFAULT_SERVER_CHECKSUM
        annotations = self.state.annotations(req.bucket, obj, create=True)
        if name not in annotations and len(annotations) >= rules.MAX_ANNOTATIONS_PER_VERSION:
            raise rules.annotation_limit_error(req.bucket, req.key, name, self._version_id(req))
        record = StoredAnnotation(
            payload=data,
            etag=rules.md5_etag(data),
            last_modified=_utcnow(),
            checksum_algorithm=algorithm,
            checksum=value or rules.checksum(algorithm, data),
        )
        annotations[name] = record
        headers = {
            "ETag": record.etag,
            f"x-amz-checksum-{algorithm.lower()}": record.checksum,
            "x-amz-checksum-type": record.checksum_type,
            "x-amz-server-side-encryption": "AES256",
            "Content-Type": "application/xml",
            **self._version_headers(req, obj),
        }
        root = ET.Element("PutObjectAnnotationOutput", xmlns=S3_XMLNS)
        ET.SubElement(root, "Key").text = req.key
        ET.SubElement(root, "AnnotationName").text = name
        return 200, headers, ET.tostring(root, encoding="utf-8", xml_declaration=True)

    def _get(self, req: _Req) -> tuple[int, dict[str, str], bytes]:
        obj, name = self._target(req, check_name=True)
        record = self.state.annotations(req.bucket, obj).get(name)
        if record is None:
            raise S3ErrorResponse(
                "NoSuchAnnotation",
                "The specified annotation does not exist on this object.",
                Key=req.key,
                AnnotationName=name,
            )
        headers = {
            "ETag": record.etag,
            "Last-Modified": email.utils.format_datetime(record.last_modified, usegmt=True),
            "Content-Type": "application/octet-stream",
            "x-amz-server-side-encryption": "AES256",
            **self._version_headers(req, obj),
        }
        if req.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED":
            headers[f"x-amz-checksum-{record.checksum_algorithm.lower()}"] = record.checksum
            headers["x-amz-checksum-type"] = record.checksum_type
        return 200, headers, record.payload

    def _list(self, req: _Req) -> tuple[int, dict[str, str], bytes]:
        page_size = _parse_max_results(req.query)  # checked before anything else (R12.2)
        obj, _ = self._target(req, check_name=False)
        prefix = rules.validate_annotation_prefix(req.query.get("annotation-prefix"), bucket=req.bucket, key=req.key)
        scope = f"annotations:{req.bucket}/{req.key}@{obj.version_id}|{prefix or ''}"
        after = None
        token = req.query.get("continuation-token")
        if token is not None:
            try:
                after = rules.decode_token(token, scope)["l"].encode("utf-8")
            except MarginaliaError:
                raise S3ErrorResponse(
                    "InvalidArgument",
                    "The continuation token provided is incorrect",
                    ArgumentName="continuation-token",
                    ArgumentValue=token,
                ) from None
        annotations = self.state.annotations(req.bucket, obj)
        names = sorted(
            (n for n in annotations if prefix is None or n.startswith(prefix)), key=lambda n: n.encode("utf-8")
        )
        if after is not None:
            names = [n for n in names if n.encode("utf-8") > after]
        page, more = names[:page_size], len(names) > page_size

        root = ET.Element("ListObjectAnnotationsOutput", xmlns=S3_XMLNS)
        entries = ET.SubElement(root, "Annotations")
        for name in page:
            record = annotations[name]
            entry = ET.SubElement(entries, "AnnotationEntry")
            ET.SubElement(entry, "AnnotationName").text = name
            ET.SubElement(entry, "ChecksumAlgorithm").text = record.checksum_algorithm
            ET.SubElement(entry, "ETag").text = record.etag
            ET.SubElement(entry, "LastModified").text = _iso8601(record.last_modified)
            ET.SubElement(entry, "Size").text = str(len(record.payload))
        ET.SubElement(root, "Bucket").text = req.bucket
        ET.SubElement(root, "Key").text = req.key
        if prefix is not None:
            ET.SubElement(root, "AnnotationPrefix").text = prefix
        ET.SubElement(root, "MaxAnnotationResults").text = str(page_size)
        ET.SubElement(root, "AnnotationCount").text = str(len(page))  # this page only (R4.8)
        if token is not None:
            ET.SubElement(root, "ContinuationToken").text = token
        if more:
            ET.SubElement(root, "NextContinuationToken").text = rules.encode_token(scope, page[-1])
        headers = {"Content-Type": "application/xml", **self._version_headers(req, obj)}
        return 200, headers, ET.tostring(root, encoding="utf-8", xml_declaration=True)

    def _delete(self, req: _Req) -> tuple[int, dict[str, str], bytes]:
        obj, name = self._target(req, check_name=True)
        self.state.annotations(req.bucket, obj).pop(name, None)  # a missing name is success (R5.4)
        return 204, self._version_headers(req, obj), b""

    # -- everything else: moto, then the lifecycle side effects (R11, R13) --------------------
    def _mutating_passthrough(self, environ: dict, start_response: Callable, req: _Req) -> Iterable[bytes]:
        from werkzeug.wrappers import Response

        _buffer_body(environ)  # read the upload before taking the lock
        answered: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info=None):
            answered["status"] = int(status.split(None, 1)[0])
            answered["headers"] = {k.lower(): v for k, v in headers}
            return start_response(status, headers, exc_info)

        with self.state.lock:  # conditional writes and their side effects happen atomically
            copy_plan = None
            if req.operation == "CopyObject":
                try:
                    copy_plan = self._plan_copy(req)
                except (S3ErrorResponse, MarginaliaError) as exc:
                    err = exc if isinstance(exc, S3ErrorResponse) else S3ErrorResponse.from_error(exc)
                    err.fields.setdefault("ArgumentName", "x-amz-object-annotation-directive")
                    status, headers, payload = _error_triplet(err, uuid.uuid4().hex[:16].upper(), req)
                    return Response(payload, status=status, headers=headers)(environ, start_response)
            result = self.app(environ, capture)
            if answered.get("status", 500) < 300:
                self._apply_side_effects(req, answered["headers"], copy_plan)
        return result

    def _plan_copy(self, req: _Req) -> tuple[str, dict[str, StoredAnnotation]]:
        """Before moto copies: the directive (R13.1, both header spellings, R13.2 query) and the
        source version's annotations (R13.5), captured while the source still exists."""
        directive = (
            req.headers.get("x-amz-object-annotation-directive")
            or req.headers.get("x-amz-annotation-directive")
            or req.query.get("x-amz-object-annotation-directive")
            or "COPY"
        )
        rules.validate_annotation_directive(directive)
        source = unquote(req.headers.get("x-amz-copy-source", "").split("?", 1)[0]).lstrip("/")
        raw_query = req.headers.get("x-amz-copy-source", "").partition("?")[2]
        source_version = dict(_parse_qsl(raw_query)).get("versionId") or None
        src_bucket, _, src_key = source.partition("/")
        from moto.s3.models import FakeKey

        src = _lookup_version(src_bucket, src_key, source_version) if src_bucket and src_key else None
        records = dict(self.state.annotations(src_bucket, src)) if isinstance(src, FakeKey) else {}
        return directive, records

    def _apply_side_effects(self, req: _Req, headers: dict[str, str], copy_plan) -> None:
        if req.operation == "CopyObject" and copy_plan is not None:
            directive, records = copy_plan
            version = headers.get("x-amz-version-id")
            dest = _lookup_version(req.bucket, req.key, version if version and version != "null" else None)
            if dest is not None:
                annotations = self.state.annotations(req.bucket, dest, create=True)
                annotations.clear()  # a new version starts empty (R11.2) ...
                if directive == "COPY":  # ... and receives the source's (R13.5)
                    now = _utcnow()
                    annotations.update({n: replace(r, last_modified=now) for n, r in records.items()})
        if req.operation == "CreateBucket":
            self.buckets_created.add(req.bucket)
        if req.key:
            self.state.prune(req.bucket, req.key)
        elif req.operation in ("DeleteObjects", "DeleteBucket"):
            self.state.prune(req.bucket)


# --- request helpers -------------------------------------------------------------------------
def _parse_qsl(query_string: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(query_string, keep_blank_values=True)


def _parse_request(environ: dict) -> _Req:
    from werkzeug.datastructures import EnvironHeaders

    raw_path = environ.get("PATH_INFO", "/")
    path = raw_path.encode("latin-1").decode("utf-8", "replace")  # WSGI hands over latin-1 text
    bucket, _, key = path.lstrip("/").partition("/")
    query = dict(_parse_qsl(environ.get("QUERY_STRING", "")))
    headers = EnvironHeaders(environ)
    method = environ.get("REQUEST_METHOD", "GET").upper()
    return _Req(method, bucket, key, query, headers, classify_request(method, bucket, key, query, headers))


def _read_body(environ: dict) -> bytes:
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    length = environ.get("CONTENT_LENGTH")
    if length and length.isdigit():
        return stream.read(int(length))
    return stream.read() if environ.get("wsgi.input_terminated") else b""


def _buffer_body(environ: dict) -> None:
    """Replace ``wsgi.input`` by an in-memory copy so the upload is read outside the state lock."""
    data = _read_body(environ)
    environ["wsgi.input"] = io.BytesIO(data)
    if environ.get("CONTENT_LENGTH") or environ.get("wsgi.input_terminated"):
        environ["CONTENT_LENGTH"] = str(len(data))


def _request_checksum(headers: Any, trailers: dict[str, str]) -> tuple[str | None, str | None]:
    """(algorithm, base64 value) the client sent, from a trailer or a header (R9.3); either may be None."""
    for source in (trailers, dict(headers.items())):
        for name, value in source.items():
            lower = name.lower()
            if lower.startswith("x-amz-checksum-") and lower not in ("x-amz-checksum-type", "x-amz-checksum-mode"):
                return lower.removeprefix("x-amz-checksum-").upper(), value.strip()
    algorithm = headers.get("x-amz-sdk-checksum-algorithm")
    return (algorithm.upper() if algorithm else None), None


def _parse_max_results(query: dict[str, str]) -> int:
    raw = query.get("max-annotation-results", "")
    if raw == "":
        return rules.MAX_PAGE_SIZE  # default page size (R4.3)
    try:
        value = int(raw)
    except ValueError:
        raise S3ErrorResponse(
            "InvalidArgument",
            "Provided max-annotation-results not an integer or within integer range",
            ArgumentName="max-annotation-results",
            ArgumentValue=raw,
        ) from None
    if not 1 <= value <= rules.MAX_PAGE_SIZE:
        raise S3ErrorResponse(
            "InvalidArgument",
            f"Argument max-annotation-results must be an integer between 1 and {rules.MAX_PAGE_SIZE}",
            ArgumentName="max-annotation-results",
            ArgumentValue=raw,
        )
    return value


def _error_triplet(err: S3ErrorResponse, request_id: str, req: _Req) -> tuple[int, dict[str, str], bytes]:
    fields = dict(err.fields)
    if err.code in ("NoSuchKey", "NoSuchAnnotation", "NoSuchVersion"):
        fields.setdefault("Key", req.key)
    if "annotationName" in req.query and err.code not in ("NoSuchBucket",):
        fields.setdefault("AnnotationName", req.query["annotationName"])
    headers = {**err.headers, "Content-Type": "application/xml"}
    return err.status, headers, error_document(err.code, err.message, request_id, **fields)


# --- the server ------------------------------------------------------------------------------
class TestS3Server:
    """moto's S3 plus the annotation middleware, served on ``127.0.0.1:<free port>`` in a thread.

    Use :func:`start_test_server` (or the class as a context manager). ``endpoint_url`` is what to
    give boto3 / :class:`~marginalia.storage.s3.S3Store`; any credentials are accepted.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        class QuietHandler(MotoRequestHandler):
            def log_request(self, *args, **kwargs) -> None:  # no access log per request
                pass

        self.middleware = AnnotationMiddleware(DomainDispatcherApplication(create_backend_app))
        self._server = make_server("127.0.0.1", 0, self.middleware, threaded=True, request_handler=QuietHandler)
        self.host = "127.0.0.1"
        self.port: int = self._server.server_address[1]
        self.endpoint_url = f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"test-s3-{self.port}", daemon=True
        )
        self._thread.start()
        self._stopped = False

    def request_counts(self) -> dict[str, int]:
        """Requests received since start (or :meth:`reset_counts`), by S3 operation name."""
        return self.middleware.request_counts()

    def reset_counts(self) -> None:
        self.middleware.reset_counts()

    def reset(self) -> None:
        """Forget the buckets created through this server (objects, versions, uploads, annotations)
        and the request counts. Other servers' and other tests' buckets in this process are kept,
        so a session-wide server can be reset between tests safely."""
        from moto.s3.models import FakeKey, s3_backends

        with _STATE.lock:
            for name in sorted(self.middleware.buckets_created):
                backend = _moto_backend(name)
                if backend is not None:
                    bucket = backend.buckets.pop(name)
                    for _key, versions in bucket.keys.iterlists():
                        for version in versions:
                            if isinstance(version, FakeKey):
                                version.dispose()
                    for upload in bucket.multiparts.values():
                        upload.dispose()
                    s3_backends.bucket_accounts.pop(name, None)
                _STATE.prune(name)
            self.middleware.buckets_created.clear()
        self.reset_counts()

    @staticmethod
    def reset_all() -> None:
        """Forget every S3 bucket and annotation in this process (moto's S3 state is process-wide)."""
        from moto.s3.models import s3_backends

        with _STATE.lock:
            for account_backends in list(s3_backends.values()):
                account_backends.reset()
            _STATE.clear()

    def client(self, **kwargs):
        """A boto3 S3 client for this server (dummy credentials, path style, us-east-1)."""
        import boto3
        from botocore.config import Config

        kwargs.setdefault("region_name", "us-east-1")
        kwargs.setdefault("aws_access_key_id", "testing")
        kwargs.setdefault("aws_secret_access_key", "testing")
        kwargs.setdefault("config", Config(s3={"addressing_style": "path"}, retries={"mode": "standard"}))
        return boto3.client("s3", endpoint_url=self.endpoint_url, **kwargs)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> TestS3Server:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<TestS3Server {self.endpoint_url}{' stopped' if self._stopped else ''}>"


def start_test_server() -> TestS3Server:
    """Start a :class:`TestS3Server` on a free port of 127.0.0.1 and return it (already serving)."""
    return TestS3Server()
