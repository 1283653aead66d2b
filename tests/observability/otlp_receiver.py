"""A small OTLP/HTTP trace receiver on 127.0.0.1: what the Langfuse SDK really exports, decoded.

Langfuse 5 exports OpenTelemetry spans as protobuf (usually gzip) with Basic auth to
``POST {LANGFUSE_BASE_URL}/api/public/otel/v1/traces``. This server accepts exactly that, decodes
each request with opentelemetry-proto's ``ExportTraceServiceRequest`` and keeps every span as a
plain :class:`Span`, plus the raw (decompressed) bodies and headers, so a test can assert on trace
ids, names, levels, attributes, and search the raw bytes for secrets.

Run it in-process (``OTLPReceiver().start()``) or as ``python otlp_receiver.py PORTFILE`` in
another process; both record the same way.
"""

from __future__ import annotations

import gzip
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

TRACES_PATH = "/api/public/otel/v1/traces"


def _value(v):
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind) if kind else None


@dataclass
class Span:
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    attributes: dict = field(default_factory=dict)
    start_ns: int = 0
    end_ns: int = 0

    @property
    def level(self) -> str | None:
        return self.attributes.get("langfuse.observation.level")

    def attr_json(self, name: str):
        raw = self.attributes.get(name)
        try:
            return json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            return raw


class OTLPReceiver:
    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.bodies: list[bytes] = []
        self.auth_headers: list[str] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- server ------------------------------------------------------------------------------
    def start(self) -> OTLPReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path.split("?")[0] != TRACES_PATH:
                    self.send_response(404)
                    self.end_headers()
                    return
                receiver.record(body, self.headers.get("Authorization", ""))
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="otlp-receiver", daemon=True)
        self._thread.start()
        return self

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # --- records -----------------------------------------------------------------------------
    def record(self, body: bytes, auth: str) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        spans = [
            Span(
                trace_id=s.trace_id.hex(),
                span_id=s.span_id.hex(),
                parent_span_id=s.parent_span_id.hex(),
                name=s.name,
                attributes={kv.key: _value(kv.value) for kv in s.attributes},
                start_ns=s.start_time_unix_nano,
                end_ns=s.end_time_unix_nano,
            )
            for rs in request.resource_spans
            for ss in rs.scope_spans
            for s in ss.spans
        ]
        with self._lock:
            self.bodies.append(body)
            self.auth_headers.append(auth)
            self.spans.extend(spans)

    def of_trace(self, trace_id: str) -> list[Span]:
        with self._lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def clear(self) -> None:
        with self._lock:
            self.spans.clear()
            self.bodies.clear()
            self.auth_headers.clear()
