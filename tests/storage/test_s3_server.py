"""The project's S3 test server (moto + annotation middleware) and what only S3Store does.

Why the middleware exists is proven first: bare moto 5.2.5 corrupts objects on annotation calls
(spec §19.1 M1-M5). Then the wire behaviour a real S3 client sees (status codes, error XML,
list XML, checksums, aws-chunked bodies), the lifecycle side effects the contract suite does not
reach (DeleteObjects, multipart, delete markers, both directive spellings), request counting,
reset(), and the atomicity of conditional writes under concurrency.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import threading
import uuid
import xml.etree.ElementTree as ET
import zlib
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote, urlparse

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum

from marginalia.errors import PreconditionFailed
from marginalia.storage import rules
from marginalia.testing.s3_server import classify_request, decode_aws_chunked

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def _name(prefix: str = "srv") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


@pytest.fixture
def client(s3_server):
    c = s3_server.client()
    yield c
    c.close()


@pytest.fixture
def bkt(client) -> str:
    name = _name()
    client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def vbkt(client) -> str:
    name = _name("ver")
    client.create_bucket(Bucket=name)
    client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def _raw(server, method: str, path: str, body: bytes = b"", headers: dict | None = None):
    """One unsigned HTTP request (annotation routes are answered by the middleware, which, like
    moto, does not check signatures); returns (status, headers, body)."""
    url = urlparse(server.endpoint_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def _error(body: bytes) -> dict[str, str]:
    root = ET.fromstring(body)
    assert root.tag == "Error"
    return {child.tag: child.text or "" for child in root}


# --- why: bare moto corrupts objects ---------------------------------------------------------
@pytest.fixture(scope="module")
def bare_moto():
    """moto's own server app, exactly as ThreadedMotoServer builds it, without our middleware."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, DomainDispatcherApplication(create_backend_app), threaded=True,
                         request_handler=MotoRequestHandler)  # fmt: skip
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _annotation_round(c, bucket: str) -> tuple[bytes, bytes, bool, bool]:
    """Put an object, annotate it, read back and delete the annotation; report what happened."""
    c.put_object(Bucket=bucket, Key="doc.txt", Body=b"the original body")
    c.put_object_annotation(Bucket=bucket, Key="doc.txt", AnnotationName="agent.summary", AnnotationPayload=b'{"s":1}')
    body_after_put = c.get_object(Bucket=bucket, Key="doc.txt")["Body"].read()
    try:
        got = c.get_object_annotation(Bucket=bucket, Key="doc.txt", AnnotationName="never.written")
        other_name = got["AnnotationPayload"].read()
    except ClientError as exc:
        other_name = exc.response["Error"]["Code"].encode()
    c.delete_object_annotation(Bucket=bucket, Key="doc.txt", AnnotationName="agent.summary")
    try:
        c.head_object(Bucket=bucket, Key="doc.txt")
        object_survives = True
    except ClientError:
        object_survives = False
    try:
        c.put_object_annotation(Bucket=bucket, Key="missing.txt", AnnotationName="a", AnnotationPayload=b"x")
        created_missing = True
    except ClientError:
        created_missing = False
    return body_after_put, other_name, object_survives, created_missing


def test_bare_moto_corrupts_objects_and_the_middleware_does_not(bare_moto, s3_server):
    import boto3

    bare = boto3.client("s3", endpoint_url=bare_moto, region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}))  # fmt: skip
    bucket = _name("bare")
    bare.create_bucket(Bucket=bucket)
    body, other, survives, created = _annotation_round(bare, bucket)
    assert body == b'{"s":1}'  # M1: the annotation payload replaced the object's body
    assert other == b'{"s":1}'  # M3: any name "exists" and returns the object body
    assert survives is False  # M5: DeleteObjectAnnotation deleted the object
    assert created is True  # M2: annotating a missing key created it

    ours = s3_server.client()
    bucket = _name("ours")
    ours.create_bucket(Bucket=bucket)
    body, other, survives, created = _annotation_round(ours, bucket)
    assert body == b"the original body"
    assert other == b"NoSuchAnnotation"
    assert survives is True
    assert created is False


# --- wire behaviour --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "payload", "code", "status"),
    [
        ("has space", b"x", "InvalidAnnotationName", 400),
        ("aws.reserved", b"x", "InvalidAnnotationName", 400),
        ("n" * 513, b"x", "AnnotationNameTooLong", 400),
        ("ok", b"", "EntityTooSmall", 400),
        ("ok", b"\xff\xfe", "UnsupportedMediaType", 415),
        ("ok", b"x" * (rules.MAX_PAYLOAD_BYTES + 1), "EntityTooLarge", 400),
    ],
)
def test_put_errors_have_the_spec_code_and_status(client, bkt, name, payload, code, status):
    client.put_object(Bucket=bkt, Key="k", Body=b"body")
    with pytest.raises(ClientError) as info:
        client.put_object_annotation(Bucket=bkt, Key="k", AnnotationName=name, AnnotationPayload=payload)
    assert info.value.response["Error"]["Code"] == code
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert client.get_object(Bucket=bkt, Key="k")["Body"].read() == b"body"


def test_missing_things_answer_404_with_the_right_code(client, bkt, vbkt):
    client.put_object(Bucket=bkt, Key="k", Body=b"body")
    cases = [
        (dict(Bucket=_name("nob"), Key="k", AnnotationName="a"), "NoSuchBucket"),
        (dict(Bucket=bkt, Key="nokey", AnnotationName="a"), "NoSuchKey"),
        (dict(Bucket=bkt, Key="k", AnnotationName="absent"), "NoSuchAnnotation"),
    ]
    client.put_object(Bucket=vbkt, Key="k", Body=b"v1")
    cases.append((dict(Bucket=vbkt, Key="k", AnnotationName="a", VersionId="no-such-version"), "NoSuchVersion"))
    for params, code in cases:
        with pytest.raises(ClientError) as info:
            client.get_object_annotation(**params)
        assert (info.value.response["Error"]["Code"], info.value.response["ResponseMetadata"]["HTTPStatusCode"]) == (
            code,
            404,
        )
    assert info.value.response["Error"]["Key"] == "k"


def test_delete_marker_version_is_405_and_current_marker_is_no_such_key(client, vbkt):
    client.put_object(Bucket=vbkt, Key="k", Body=b"v1")
    marker = client.delete_object(Bucket=vbkt, Key="k")["VersionId"]
    with pytest.raises(ClientError) as info:
        client.list_object_annotations(Bucket=vbkt, Key="k", VersionId=marker)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 405
    assert info.value.response["Error"]["Code"] == "MethodNotAllowed"
    with pytest.raises(ClientError) as info:
        client.list_object_annotations(Bucket=vbkt, Key="k")
    assert info.value.response["Error"]["Code"] == "NoSuchKey"


def test_object_if_match_mismatch_is_412(client, bkt):
    etag = client.put_object(Bucket=bkt, Key="k", Body=b"body")["ETag"]
    ok = client.put_object_annotation(
        Bucket=bkt, Key="k", AnnotationName="a", AnnotationPayload=b"1", ObjectIfMatch=etag
    )
    assert ok["ETag"] == rules.md5_etag(b"1")
    with pytest.raises(ClientError) as info:
        client.put_object_annotation(
            Bucket=bkt, Key="k", AnnotationName="a", AnnotationPayload=b"2", ObjectIfMatch='"0000"'
        )
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    got = client.get_object_annotation(Bucket=bkt, Key="k", AnnotationName="a")["AnnotationPayload"].read()
    assert got == b"1"


def test_list_xml_shape_and_pagination(s3_server, client, bkt):
    client.put_object(Bucket=bkt, Key="dir/k é", Body=b"body")
    names = ["b.two", "a.one", "b.one", "é.accent", "c"]
    for n in names:
        client.put_object_annotation(Bucket=bkt, Key="dir/k é", AnnotationName=n, AnnotationPayload=n.encode())
    path = f"/{bkt}/{quote('dir/k é')}?annotation&max-annotation-results=2&annotation-prefix=b."
    status, headers, body = _raw(s3_server, "GET", path)
    assert status == 200 and "x-amz-object-version-id" not in headers  # unversioned bucket (R11.9)
    root = ET.fromstring(body)
    assert root.tag == f"{NS}ListObjectAnnotationsOutput"
    entries = root.findall(f"{NS}Annotations/{NS}AnnotationEntry")  # wrapped in <Annotations> (R4.6)
    assert [e.findtext(f"{NS}AnnotationName") for e in entries] == ["b.one", "b.two"]
    assert root.findtext(f"{NS}AnnotationCount") == "2"
    assert root.findtext(f"{NS}AnnotationPrefix") == "b."
    assert root.findtext(f"{NS}NextContinuationToken") is None  # exactly two matched: no more pages
    assert entries[0].findtext(f"{NS}Size") == "5" and entries[0].findtext(f"{NS}ETag") == rules.md5_etag(b"b.one")

    pages = list(
        client.get_paginator("list_object_annotations").paginate(
            Bucket=bkt, Key="dir/k é", PaginationConfig={"PageSize": 2}
        )
    )
    listed = [(len(p["Annotations"]), p["AnnotationCount"]) for p in pages]
    assert listed == [(2, 2), (2, 2), (1, 1)]  # AnnotationCount counts the page (R4.8)
    all_names = [a["AnnotationName"] for p in pages for a in p["Annotations"]]
    assert all_names == sorted(names, key=lambda n: n.encode())


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("max-annotation-results=abc", "Provided max-annotation-results not an integer or within integer range"),
        ("max-annotation-results=0", "Argument max-annotation-results must be an integer between 1 and 1000"),
        ("max-annotation-results=1001", "Argument max-annotation-results must be an integer between 1 and 1000"),
    ],
)
def test_max_results_is_checked_before_the_bucket(s3_server, query, message):
    status, _, body = _raw(s3_server, "GET", f"/{_name('nob')}/k?annotation&{query}")
    error = _error(body)
    assert (status, error["Code"], error["Message"]) == (400, "InvalidArgument", message)
    assert error["ArgumentName"] == "max-annotation-results"


def test_raw_protocol_edges(s3_server, client, bkt):
    client.put_object(Bucket=bkt, Key="k", Body=b"body")
    status, headers, _ = _raw(s3_server, "HEAD", f"/{bkt}/k?annotation")
    assert status == 405 and headers["allow"] == "GET"
    status, _, body = _raw(s3_server, "GET", f"/{bkt}/k?annotation&continuation-token=garbage")
    assert status == 400 and _error(body)["ArgumentName"] == "continuation-token"
    status, _, body = _raw(s3_server, "GET", f"/{bkt}/k?annotation&annotationName=")  # Get, not List (R3.2)
    assert status == 400 and _error(body)["Code"] == "UserAnnotationNameMustBeSpecified"
    status, _, body = _raw(s3_server, "PUT", f"/{bkt}/k?annotation&annotationName=a", b"x",
                           {"x-amz-checksum-crc32": base64.b64encode(b"\0\0\0\0").decode()})  # fmt: skip
    assert status == 400 and _error(body)["Code"] == "BadDigest"
    status, headers, body = _raw(s3_server, "DELETE", f"/{bkt}/k?annotation&annotationName=never")
    assert (status, body) == (204, b"")  # deleting a missing name succeeds (R5.4)


def test_version_header_on_versioned_objects(client, vbkt):
    v1 = client.put_object(Bucket=vbkt, Key="k", Body=b"v1")["VersionId"]
    put = client.put_object_annotation(Bucket=vbkt, Key="k", AnnotationName="a", AnnotationPayload=b"x")
    assert put["ObjectVersionId"] == v1
    deleted = client.delete_object_annotation(Bucket=vbkt, Key="k", AnnotationName="a")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204 and deleted["ObjectVersionId"] == v1


def test_checksums_default_chosen_and_returned(s3_server, bkt, client):
    client.put_object(Bucket=bkt, Key="k", Body=b"body")
    payload = "naïve ☃".encode()
    sha = client.put_object_annotation(Bucket=bkt, Key="k", AnnotationName="sha", AnnotationPayload=payload,
                                       ChecksumAlgorithm="SHA256")  # fmt: skip
    assert sha["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(payload).digest()).decode()
    got = client.get_object_annotation(Bucket=bkt, Key="k", AnnotationName="sha", ChecksumMode="ENABLED")
    assert got["ChecksumSHA256"] == sha["ChecksumSHA256"] and got["AnnotationPayload"].read() == payload

    # A client that sends no checksum gets S3's default, CRC-64/NVME (R9.2).
    plain = s3_server.client(
        config=Config(s3={"addressing_style": "path"}, request_checksum_calculation="when_required")
    )
    put = plain.put_object_annotation(Bucket=bkt, Key="k", AnnotationName="none", AnnotationPayload=payload)
    assert put["ChecksumCRC64NVME"] == rules.checksum("CRC64NVME", payload)
    listed = client.list_object_annotations(Bucket=bkt, Key="k")["Annotations"]
    assert {a["AnnotationName"]: a["ChecksumAlgorithm"] for a in listed} == {"none": ["CRC64NVME"], "sha": ["SHA256"]}


def test_aws_chunked_body_with_checksum_trailer(s3_server, client, bkt):
    """What boto3 sends over HTTPS (R9.3), encoded by botocore's own AwsChunkedWrapper."""
    client.put_object(Bucket=bkt, Key="k", Body=b"body")
    payload = ("chunked payload " * 500).encode()
    wrapped = AwsChunkedWrapper(io.BytesIO(payload), checksum_cls=Crc32Checksum,
                                checksum_name="x-amz-checksum-crc32", chunk_size=1024).read()  # fmt: skip
    headers = {
        "Content-Encoding": "aws-chunked",
        "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "x-amz-trailer": "x-amz-checksum-crc32",
        "x-amz-decoded-content-length": str(len(payload)),
    }
    status, response_headers, _ = _raw(s3_server, "PUT", f"/{bkt}/k?annotation&annotationName=big", wrapped, headers)
    assert status == 200
    crc = base64.b64encode(zlib.crc32(payload).to_bytes(4, "big")).decode()
    assert response_headers["x-amz-checksum-crc32"] == crc
    assert (
        client.get_object_annotation(Bucket=bkt, Key="k", AnnotationName="big")["AnnotationPayload"].read() == payload
    )

    decoded, trailers = decode_aws_chunked(wrapped)
    assert decoded == payload and trailers == {"x-amz-checksum-crc32": crc}
    status, _, body = _raw(s3_server, "PUT", f"/{bkt}/k?annotation&annotationName=cut", wrapped[:1500], headers)
    assert status == 400 and _error(body)["Code"] == "IncompleteBody"


# --- lifecycle side effects the contract suite does not reach ---------------------------------
def test_delete_objects_drops_annotations_per_key(client, bkt, vbkt):
    for bucket in (bkt, vbkt):
        for k in ("a", "b"):
            client.put_object(Bucket=bucket, Key=k, Body=b"x")
            client.put_object_annotation(Bucket=bucket, Key=k, AnnotationName="n", AnnotationPayload=b"1")
    client.delete_objects(Bucket=bkt, Delete={"Objects": [{"Key": "a"}, {"Key": "b"}]})
    client.put_object(Bucket=bkt, Key="a", Body=b"x")  # recreated: must start empty (R11.3)
    assert client.list_object_annotations(Bucket=bkt, Key="a")["Annotations"] == []

    version_b = client.head_object(Bucket=vbkt, Key="b")["VersionId"]
    client.delete_objects(Bucket=vbkt, Delete={"Objects": [{"Key": "b"}]})  # delete marker (R11.4, R11.10)
    kept = client.list_object_annotations(Bucket=vbkt, Key="b", VersionId=version_b)["Annotations"]
    assert [a["AnnotationName"] for a in kept] == ["n"]
    client.delete_objects(Bucket=vbkt, Delete={"Objects": [{"Key": "b", "VersionId": version_b}]})  # R11.5
    with pytest.raises(ClientError) as info:
        client.list_object_annotations(Bucket=vbkt, Key="b", VersionId=version_b)
    assert info.value.response["Error"]["Code"] == "NoSuchVersion"


def test_multipart_upload_creates_a_version_without_annotations(client, bkt):
    client.put_object(Bucket=bkt, Key="big", Body=b"small")
    client.put_object_annotation(Bucket=bkt, Key="big", AnnotationName="n", AnnotationPayload=b"1")
    upload = client.create_multipart_upload(Bucket=bkt, Key="big")["UploadId"]
    part = client.upload_part(Bucket=bkt, Key="big", UploadId=upload, PartNumber=1, Body=b"p" * 1024)
    client.complete_multipart_upload(Bucket=bkt, Key="big", UploadId=upload,
                                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})  # fmt: skip
    assert client.list_object_annotations(Bucket=bkt, Key="big")["Annotations"] == []


@pytest.mark.parametrize("header", ["x-amz-annotation-directive", "x-amz-object-annotation-directive"])
def test_copy_directive_header_spellings_and_bad_value(client, bkt, header):
    client.put_object(Bucket=bkt, Key="src", Body=b"x")
    client.put_object_annotation(Bucket=bkt, Key="src", AnnotationName="n", AnnotationPayload=b"1")

    def send(value):
        def add_header(request, **_):
            request.headers[header] = value

        client.meta.events.register_first("before-sign.s3.CopyObject", add_header)
        try:
            client.copy_object(Bucket=bkt, Key="dst", CopySource={"Bucket": bkt, "Key": "src"})
        finally:
            client.meta.events.unregister("before-sign.s3.CopyObject", add_header)

    send("EXCLUDE")
    assert client.list_object_annotations(Bucket=bkt, Key="dst")["Annotations"] == []
    with pytest.raises(ClientError) as info:
        send("SOMETIMES")
    assert info.value.response["Error"]["Code"] == "InvalidArgument"


def test_copy_in_place_keeps_annotations_on_the_new_object(client, bkt):
    client.put_object(Bucket=bkt, Key="k", Body=b"x")
    client.put_object_annotation(Bucket=bkt, Key="k", AnnotationName="n", AnnotationPayload=b"kept")
    client.copy_object(Bucket=bkt, Key="k", CopySource={"Bucket": bkt, "Key": "k"}, MetadataDirective="REPLACE",
                       Metadata={"m": "1"}, AnnotationDirective="COPY")  # fmt: skip
    got = client.get_object_annotation(Bucket=bkt, Key="k", AnnotationName="n")["AnnotationPayload"].read()
    assert got == b"kept"


# --- counting, reset, concurrency ------------------------------------------------------------
def test_request_counts_by_operation(s3_server, client, bkt):
    s3_server.reset_counts()
    client.put_object(Bucket=bkt, Key="k", Body=b"x")
    client.put_object(Bucket=bkt, Key="k2", Body=b"x", IfNoneMatch="*")
    client.head_object(Bucket=bkt, Key="k")
    client.get_object(Bucket=bkt, Key="k")
    client.copy_object(Bucket=bkt, Key="k3", CopySource={"Bucket": bkt, "Key": "k"})
    client.list_objects_v2(Bucket=bkt)
    client.put_object_annotation(Bucket=bkt, Key="k", AnnotationName="a", AnnotationPayload=b"1")
    client.get_object_annotation(Bucket=bkt, Key="k", AnnotationName="a")
    client.list_object_annotations(Bucket=bkt, Key="k")
    client.delete_object_annotation(Bucket=bkt, Key="k", AnnotationName="a")
    client.delete_object(Bucket=bkt, Key="k")
    client.delete_objects(Bucket=bkt, Delete={"Objects": [{"Key": "k2"}, {"Key": "k3"}]})
    assert s3_server.request_counts() == {
        "PutObject": 2, "HeadObject": 1, "GetObject": 1, "CopyObject": 1, "ListObjectsV2": 1,
        "PutObjectAnnotation": 1, "GetObjectAnnotation": 1, "ListObjectAnnotations": 1, "DeleteObjectAnnotation": 1,
        "DeleteObject": 1, "DeleteObjects": 1,
    }  # fmt: skip
    s3_server.reset_counts()
    assert s3_server.request_counts() == {}


@pytest.mark.parametrize(
    ("method", "path", "query", "headers", "expected"),
    [
        ("GET", "", {}, {}, "ListBuckets"),
        ("PUT", "b", {}, {}, "CreateBucket"),
        ("PUT", "b", {"versioning": ""}, {}, "PutBucketVersioning"),
        ("GET", "b", {"versioning": ""}, {}, "GetBucketVersioning"),
        ("GET", "b", {"list-type": "2", "prefix": "p"}, {}, "ListObjectsV2"),
        ("GET", "b", {"versions": ""}, {}, "ListObjectVersions"),
        ("HEAD", "b", {}, {}, "HeadBucket"),
        ("POST", "b", {"delete": ""}, {}, "DeleteObjects"),
        ("POST", "b/k", {"uploads": ""}, {}, "CreateMultipartUpload"),
        ("PUT", "b/k", {"partNumber": "1", "uploadId": "u"}, {}, "UploadPart"),
        ("PUT", "b/k", {"partNumber": "1", "uploadId": "u"}, {"x-amz-copy-source": "b/s"}, "UploadPartCopy"),
        ("POST", "b/k", {"uploadId": "u"}, {}, "CompleteMultipartUpload"),
        ("DELETE", "b/k", {"uploadId": "u"}, {}, "AbortMultipartUpload"),
        ("PUT", "b/k", {"tagging": ""}, {}, "PutObjectTagging"),
        ("GET", "b/k", {"annotation": "", "annotationName": ""}, {}, "GetObjectAnnotation"),
        ("GET", "b/k", {"annotation": ""}, {}, "ListObjectAnnotations"),
    ],
)
def test_classify_request(method, path, query, headers, expected):
    bucket, _, key = path.partition("/")
    assert classify_request(method, bucket, key, query, headers) == expected


def test_reset_forgets_this_servers_buckets_only(s3_server):
    from marginalia.testing import start_test_server

    mine, theirs = _name("reset"), _name("other")
    with start_test_server() as other:
        c, o = other.client(), s3_server.client()
        c.create_bucket(Bucket=mine)
        c.put_object(Bucket=mine, Key="k", Body=b"x")
        c.put_object_annotation(Bucket=mine, Key="k", AnnotationName="n", AnnotationPayload=b"1")
        o.create_bucket(Bucket=theirs)
        other.reset()
        assert other.request_counts() == {}
        names = [b["Name"] for b in c.list_buckets()["Buckets"]]
        assert mine not in names and theirs in names
        c.create_bucket(Bucket=mine)
        c.put_object(Bucket=mine, Key="k", Body=b"x")
        assert c.list_object_annotations(Bucket=mine, Key="k")["Annotations"] == []
        other.reset()


def test_conditional_create_has_exactly_one_winner(s3_store, s3_server):
    """If-None-Match: * under contention: the checkpointer's lease depends on this being atomic."""
    bucket = _name("race")
    s3_store.create_bucket(bucket)

    def attempt(i: int) -> bool:
        try:
            s3_store.put_object(bucket, "lease", f"writer {i}".encode(), if_none_match=True)
            return True
        except PreconditionFailed:
            return False

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(attempt, range(16)))
    assert results.count(True) == 1


# --- what only S3Store does (on the same server) ----------------------------------------------
def test_large_upload_goes_multipart_and_small_conditional_stays_single(s3_server, tmp_path):
    from marginalia.storage.s3 import S3Store

    store = S3Store(endpoint_url=s3_server.endpoint_url, multipart_threshold=5 * 1024 * 1024)
    bucket = _name("mpu")
    store.create_bucket(bucket)
    path = tmp_path / "big.bin"
    path.write_bytes(b"0123456789abcdef" * (11 * 65536))  # 11 MiB: 3 parts of <= 5 MiB
    s3_server.reset_counts()
    info = store.put_object(bucket, "big.bin", path)
    counts = s3_server.request_counts()
    assert counts["CreateMultipartUpload"] == 1 and counts["UploadPart"] == 3 and counts["CompleteMultipartUpload"] == 1
    assert info.size == path.stat().st_size and info.etag.endswith('-3"')
    assert store.get_object(bucket, "big.bin")[0] == path.read_bytes()

    s3_server.reset_counts()
    with path.open("rb") as f:  # conditional: one streaming PUT even above the threshold
        with pytest.raises(PreconditionFailed):
            store.put_object(bucket, "big.bin", f, if_none_match=True)
        assert not f.closed  # the caller's file stays the caller's
    assert s3_server.request_counts() == {"PutObject": 1}
    store.close()


def test_copy_always_sends_the_annotation_directive(s3_store, s3_server):
    bucket = _name("dir")
    s3_store.create_bucket(bucket)
    s3_store.put_object(bucket, "src", b"x")
    seen: list[str | None] = []

    def record(request, **_):
        value = request.headers.get("x-amz-object-annotation-directive")
        seen.append(value.decode() if isinstance(value, bytes) else value)

    s3_store.client.meta.events.register("before-send.s3.CopyObject", record)
    s3_store.copy_object(bucket, "src", bucket, "a")
    s3_store.copy_object(bucket, "src", bucket, "b", annotation_directive="EXCLUDE")
    assert seen == ["COPY", "EXCLUDE"]


def test_s3_store_endpoint_from_environment_uses_path_style(s3_server, monkeypatch):
    from marginalia.storage.s3 import S3Store

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server.endpoint_url)
    store = S3Store()
    assert store.endpoint_url == s3_server.endpoint_url
    assert store.client.meta.config.s3["addressing_style"] == "path"
    bucket = _name("env")
    store.create_bucket(bucket)
    assert store.bucket_exists(bucket) and not store.bucket_exists(_name("absent"))
    store.close()


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("NoSuchBucket", 404, "BucketNotFound"),
        ("NoSuchKey", 404, "ObjectNotFound"),
        ("NoSuchVersion", 404, "ObjectNotFound"),
        ("404", 404, "ObjectNotFound"),  # HEAD: no body, status only
        ("MethodNotAllowed", 405, "MethodNotAllowed"),
        ("NoSuchAnnotation", 404, "AnnotationNotFound"),
        ("PreconditionFailed", 412, "PreconditionFailed"),
        ("AnnotationLimitExceeded", 400, "AnnotationLimitExceeded"),
        ("OperationAborted", 409, "ConflictRetry"),
        ("AnnotationRequestConflict", 409, "ConflictRetry"),
        ("SlowDown", 503, "TransientError"),
        ("InternalError", 500, "TransientError"),
        ("AccessDenied", 403, "BackendError"),
        ("SomethingNew", 400, "BackendError"),
    ],
)
def test_error_mapping_by_code_and_status(code, status, expected):
    """R20.3, on botocore's own ClientError shape (the mapping is a pure function of the answer)."""
    from marginalia.storage.errors_map import Target, map_client_error

    exc = ClientError({"Error": {"Code": code, "Message": "server says"}, "ResponseMetadata": {"HTTPStatusCode": status}},
                      "GetObjectAnnotation")  # fmt: skip
    error = map_client_error(exc, Target("GetObjectAnnotation", "bkt", "a/b.txt", annotation="agent.summary"))
    assert type(error).__name__ == expected
    assert "s3://bkt/a/b.txt" in str(error) and "'agent.summary'" in str(error)
    if expected == "BackendError":
        assert (error.code, error.status) == (code, status)


def test_unreachable_endpoint_is_a_transient_error():
    import socket

    from marginalia.errors import TransientError
    from marginalia.storage.s3 import S3Store

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = S3Store(endpoint_url=f"http://127.0.0.1:{port}", max_attempts=1)
    with pytest.raises(TransientError, match=r"s3://bkt/k"):
        store.head_object("bkt", "k")
