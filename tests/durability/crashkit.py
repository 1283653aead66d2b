"""Crash-recovery harness: run an agent in child processes, SIGKILL them, resume, verify.

Shared by ``tests/durability`` (a few trials per target) and ``benchmarks/crash.py`` (100).

* **Children** are new processes forked from a clean ``forkserver`` that has the agents imported
  once (a fresh interpreter per attempt would cost seconds of imports each). Each child opens its
  own store from ``MARGINALIA_STORE`` (the local bucket directory, or ``s3`` with the test server
  of the parent process at ``AWS_ENDPOINT_URL_S3``) and takes the thread forward with
  :func:`marginalia.batch.prepare_continue` (which holds the thread's lease until ``drive``
  returns), approving at the review.
* **Kill points**: ``MARGINALIA_CRASH_AT`` arms a hook in the instruments below that SIGKILLs the
  child itself at the Nth engine call, or before/after the Nth store write (any write, only
  annotation writes, only checkpoint writes, or only checkpoint records, optionally holding the
  pending-writes saves before it); the parent also kills at random times.
* **Instruments** append one JSON line per event to a log file opened with ``O_APPEND`` (lines are
  short, so each ``write`` is atomic and survives the SIGKILL that follows it): every engine call
  and every store mutation, with the LangGraph node and task id it ran in.
* **Verification** (:func:`verify`): the run ended ``done``; the annotations equal those of an
  uninterrupted run; every task whose writes were checkpointed ran in exactly one process and
  never again; each annotation was written once per execution of its node, extra writes only by
  an execution killed before its checkpoint, all with the same content; every object of the data
  bucket and the state location reads back and decodes (checkpoints through the saver's own
  serializer); the local bucket has no stray blob beyond one per kill, and ``gc`` removes them.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import re
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from marginalia.storage.base import Store  # noqa: E402

CRASH_ENV = "MARGINALIA_CRASH_AT"
LOG_ENV = "MARGINALIA_CRASH_LOG"
WRITE_OPS = (
    "put_object",
    "put_annotation",
    "delete_object",
    "delete_objects",
    "copy_object",
    "delete_annotation",
    "create_bucket",
)
AGENT_OBJECTS = {
    "minutes": "meetings/2024-05-01-standup.vtt",
    "summary": "reports/sample_report.pdf",
    "minutes-long": "meetings/2024-05-02-planning.vtt",  # LONG_CHUNKS chunks: durable per chunk?
}
#: Chunks of the long meeting (``minutes-long``) at the minutes agent's default chunk size.
LONG_CHUNKS = 36
VOLATILE = ("created_at", "thread_id", "trace_id")


# --- instruments -----------------------------------------------------------------------------
class EventLog:
    """Append-only JSON lines, one ``os.write`` each on an ``O_APPEND`` descriptor."""

    def __init__(self, path: str | os.PathLike | None):
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644) if path else None

    def __call__(self, **event: Any) -> None:
        if self.fd is None:
            return
        event["pid"] = os.getpid()
        os.write(self.fd, (json.dumps(event, default=str) + "\n").encode())

    @staticmethod
    def read(path: str | os.PathLike) -> list[dict]:
        lines = Path(path).read_text().splitlines() if Path(path).exists() else []
        return [json.loads(line) for line in lines if line.strip()]


class KillSwitch:
    """``kind:N[:before|after[:hold]]`` — SIGKILL this process at the Nth event of ``kind``.

    kinds: ``engine`` (an engine call, killed after it returned: inside the node), ``write`` (any
    store mutation), ``annotation`` (put_annotation only), ``checkpoint`` (a write under the state
    location's ``checkpoints``), ``record`` (a checkpoint record only, ``.../c``, ``.../n`` or ``.../r``:
    LangGraph saves those in order, one per superstep, so ``record:N`` is the checkpoint of step
    N - 2), ``archive`` (a thread's trace archive) and ``index`` (a thread index record). ``:hold``
    makes every pending-writes save (``.../w/...``) that starts after the (N-1)th ``kind`` event
    wait for the kill: the order a race between LangGraph's background saves can produce (a
    step's checkpoint saved, its tasks' writes not), made certain."""

    def __init__(self, spec: str | None):
        self.kind = self.n = self.when = None
        self.hold = False
        if spec:
            parts = spec.split(":")
            self.kind, self.n = parts[0], int(parts[1])
            self.when = parts[2] if len(parts) > 2 else "after"
            self.hold = parts[3:] == ["hold"]
        self.counts: Counter = Counter()
        self.lock = threading.Lock()

    def tick(self, kinds: Iterable[str]) -> bool:
        """Count one event of each of ``kinds``; True if the armed one is reached."""
        with self.lock:
            hit = False
            for kind in kinds:
                self.counts[kind] += 1
                hit |= kind == self.kind and self.counts[kind] == self.n
            return hit

    def holding(self) -> bool:
        """True once a ``:hold`` switch is one event from its kill."""
        with self.lock:
            return self.hold and self.counts[self.kind] >= self.n - 1

    @staticmethod
    def die() -> None:
        os.kill(os.getpid(), signal.SIGKILL)


def current_task() -> dict[str, Any]:
    """``node``, ``task`` id, ``step`` and ``graph_ns`` of the LangGraph task this call runs in
    (Nones outside a task). ``graph_ns`` is the checkpoint namespace of the graph that ran the
    task ("" for the root graph): ``step`` counts supersteps of that graph only."""
    try:
        from langgraph.config import get_config

        config = get_config()
    except Exception:
        return {"node": None, "task": None, "step": None, "graph_ns": None}
    meta = config.get("metadata") or {}
    ns = (config.get("configurable") or {}).get("checkpoint_ns") or meta.get("langgraph_checkpoint_ns") or ""
    task = ns.split("|")[-1].split(":", 1)[1] if ":" in ns else None
    return {
        "node": meta.get("langgraph_node"),
        "task": task,
        "step": meta.get("langgraph_step"),
        "graph_ns": "|".join(ns.split("|")[:-1]) if task else None,
    }


class CountingEngine:
    """An engine wrapper: logs every call (method, node, task) and may kill after the Nth."""

    def __init__(self, inner: Any, log: Callable[..., None], kill: KillSwitch):
        self._inner, self._log, self._kill = inner, log, kill
        self.name, self.model = inner.name, inner.model

    def __getattr__(self, attr: str) -> Any:
        target = getattr(self._inner, attr)
        if not callable(target):
            return target

        def call(*args, **kwargs):
            self._log(ev="engine-begin", method=attr, **current_task())
            result = target(*args, **kwargs)
            self._log(ev="engine", method=attr, **current_task())
            if self._kill.tick(["engine"]):
                self._kill.die()
            return result

        return call


class RecordingStore(Store):
    """A Store that delegates to ``inner`` and records (and may kill at) every mutation.

    Reads pass straight through. Used by the crash harness and by the security tests (to assert
    which writes an agent made and that nothing was deleted).
    """

    def __init__(
        self, inner: Store, log: EventLog | None = None, kill: KillSwitch | None = None, state_bucket: str | None = None
    ):
        self.inner = inner
        self.kind = inner.kind
        self.log = log or EventLog(None)
        self.kill = kill or KillSwitch(None)
        self.state_bucket = state_bucket
        self.calls: list[dict] = []  # every mutation of this process, in memory too
        self._lock = threading.Lock()

    def __getattr__(self, attr: str) -> Any:  # backend extras (e.g. S3Store.client)
        return getattr(self.inner, attr)

    def _mutate(self, op: str, fn, bucket: str, key: str | None = None, name: str | None = None, **extra):
        event = {"op": op, "bucket": bucket, "key": key, "name": name, **current_task(), **extra}
        kinds = ["write"]
        if op == "put_annotation":
            kinds.append("annotation")
        if op == "put_object" and key and "/archives/" in f"/{key}":
            kinds.append("archive")
        if op == "put_object" and key and "/threads/" in f"/{key}":
            kinds.append("index")
        if op == "put_object" and key and "/checkpoints/" in f"/{key}":
            kinds.append("checkpoint")
            if key.rsplit("/", 1)[-1] in ("c", "n") or (key.endswith("/r") and "/w/" not in key):
                kinds.append("record")
            elif "/w/" in key and self.kill.holding():
                threading.Event().wait()  # until the armed kill ends the process
        hit = self.kill.tick(kinds)
        self.log(ev="write", phase="begin", **event)  # begun (in flight), even when killed before it lands
        if hit and self.kill.when == "before":
            self.kill.die()
        result = fn()
        etag = getattr(result, "etag", None)
        self.log(ev="write", phase="end", etag=etag, **event)
        with self._lock:
            self.calls.append({**event, "etag": etag})
        if hit:
            self.kill.die()
        return result

    # --- mutations ---
    def create_bucket(self, bucket, *, versioned=False, exist_ok=True):
        return self._mutate(
            "create_bucket", lambda: self.inner.create_bucket(bucket, versioned=versioned, exist_ok=exist_ok), bucket
        )

    def put_object(self, bucket, key, body, **kw):
        return self._mutate("put_object", lambda: self.inner.put_object(bucket, key, body, **kw), bucket, key)

    def delete_object(self, bucket, key, *, version_id=None):
        return self._mutate(
            "delete_object", lambda: self.inner.delete_object(bucket, key, version_id=version_id), bucket, key
        )

    def delete_objects(self, bucket, keys):
        keys = list(keys)
        return self._mutate(
            "delete_objects", lambda: self.inner.delete_objects(bucket, keys), bucket, None, count=len(keys)
        )

    def copy_object(self, src_bucket, src_key, dst_bucket, dst_key, **kw):
        return self._mutate(
            "copy_object",
            lambda: self.inner.copy_object(src_bucket, src_key, dst_bucket, dst_key, **kw),
            dst_bucket,
            dst_key,
            source=f"{src_bucket}/{src_key}",
        )

    def put_annotation(self, bucket, key, name, payload, **kw):
        size = len(payload.encode() if isinstance(payload, str) else payload)
        return self._mutate(
            "put_annotation",
            lambda: self.inner.put_annotation(bucket, key, name, payload, **kw),
            bucket,
            key,
            name,
            size=size,
        )

    def delete_annotation(self, bucket, key, name, **kw):
        return self._mutate(
            "delete_annotation", lambda: self.inner.delete_annotation(bucket, key, name, **kw), bucket, key, name
        )

    # --- reads ---
    def bucket_exists(self, bucket):
        return self.inner.bucket_exists(bucket)

    def is_versioned(self, bucket):
        return self.inner.is_versioned(bucket)

    def get_object(self, bucket, key, *, version_id=None):
        return self.inner.get_object(bucket, key, version_id=version_id)

    def open_object(self, bucket, key, *, version_id=None):
        return self.inner.open_object(bucket, key, version_id=version_id)

    def head_object(self, bucket, key, *, version_id=None):
        return self.inner.head_object(bucket, key, version_id=version_id)

    def list_objects_page(self, bucket, prefix="", **kw):
        return self.inner.list_objects_page(bucket, prefix, **kw)

    def get_annotation(self, bucket, key, name, *, version_id=None):
        return self.inner.get_annotation(bucket, key, name, version_id=version_id)

    def list_annotations_page(self, bucket, key, **kw):
        return self.inner.list_annotations_page(bucket, key, **kw)

    def close(self):
        self.inner.close()


# --- the child -------------------------------------------------------------------------------
def child_main(agent: str, uri: str, thread_id: str, env: dict[str, str], driver: str = "sync") -> None:
    """One attempt: take the thread forward to ``done`` (approving at review) unless killed.
    ``driver``: ``sync`` runs the graph with :func:`~marginalia.runtime.drive` (``graph.stream``),
    ``async`` with :func:`~marginalia.runtime.adrive` (``graph.astream`` on an event loop)."""
    os.environ.update(env)
    import asyncio

    from marginalia.batch import batch_agent, prepare_continue
    from marginalia.config import open_store
    from marginalia.engines.offline import OfflineEngine
    from marginalia.runtime import RunResult, adrive, drive, resume

    log, kill = EventLog(env[LOG_ENV]), KillSwitch(env.get(CRASH_ENV))
    store = RecordingStore(open_store(), log, kill)
    engine = CountingEngine(OfflineEngine(), log, kill)
    spec = batch_agent(graph_agent(agent))
    for _ in range(10):
        run = prepare_continue(spec, uri, thread_id=thread_id, store=store, engine=engine, approve=False)
        if isinstance(run, RunResult):
            if run.status != "waiting":
                log(ev="finished", status=run.status)
                os._exit(0 if run.status == "done" else 3)
            run = resume(thread_id, {"action": "approve", "reviewer": "crash-harness"}, engine=engine, store=store)
        if driver == "async":
            asyncio.run(adrive(run))
        else:
            drive(run)
    os._exit(4)


_CTX = None


def context():
    """The forkserver context, its server preloaded with the agents (started once)."""
    global _CTX
    if _CTX is None:
        _CTX = multiprocessing.get_context("forkserver")
        _CTX.set_forkserver_preload(
            [
                "crashkit",
                "marginalia.batch",
                "marginalia.graph.minutes",
                "marginalia.graph.pdf_summary",
                "marginalia.engines.offline",
                "marginalia.storage.local",
                "marginalia.storage.s3",
                "marginalia.checkpointers",
            ]
        )
    return _CTX


# --- targets and trials ---------------------------------------------------------------------
@dataclass
class Target:
    """Where a trial runs: ``local`` (a bucket directory) or ``s3`` (the parent's test server)."""

    kind: str
    root: Path  # local: store directory; both: where logs go
    endpoint: str | None = None

    def env(self, state_bucket: str) -> dict[str, str]:
        env = {
            "MARGINALIA_STATE": f"s3://{state_bucket}/v1",
            "MARGINALIA_ENGINE": "offline",
            "MARGINALIA_LEASE_TTL": "30",
        }
        if self.kind == "local":
            env["MARGINALIA_STORE"] = f"local:{self.root / 'store'}"
        else:
            env.update(
                {
                    "MARGINALIA_STORE": "s3",
                    "AWS_ENDPOINT_URL_S3": self.endpoint or "",
                    "AWS_ACCESS_KEY_ID": "testing",
                    "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_DEFAULT_REGION": "us-east-1",
                }
            )
        return env

    def open(self) -> Store:
        if self.kind == "local":
            from marginalia.storage.local import LocalStore

            return LocalStore(self.root / "store")
        from marginalia.storage.s3 import S3Store

        return S3Store(endpoint_url=self.endpoint)


def fixture_bytes(agent: str) -> bytes:
    import marginalia

    if agent == "minutes-long":
        from marginalia.nodes.minutes import DEFAULT_CHUNK_CHARS

        return long_meeting_vtt(LONG_CHUNKS * DEFAULT_CHUNK_CHARS)
    samples = Path(marginalia.__file__).parent / "samples"
    return (samples / ("standup.vtt" if agent == "minutes" else "sample_report.pdf")).read_bytes()


def graph_agent(agent: str) -> str:
    """The batch agent that runs a trial agent (``minutes-long`` is the minutes agent)."""
    return agent.split("-")[0]


def long_meeting_vtt(chars: int) -> bytes:
    """A WebVTT meeting of about ``chars`` characters of speech: the sample stand-up's lines
    over and over, each round numbered (so chunks differ), with running timestamps. Deterministic."""
    from marginalia.tools.transcripts import parse_transcript

    lines = parse_transcript(fixture_bytes("minutes"), filename="standup.vtt").segments
    out, total, t, n = ["WEBVTT", ""], 0, 0.0, 0
    while total < chars:
        for seg in lines:
            n += 1
            text = f"{seg.text} (round {n // len(lines) + 1})"
            start, t = t, t + 4.0
            stamp = f"{int(start // 3600):02d}:{int(start % 3600 // 60):02d}:{start % 60:06.3f}"
            end = f"{int(t // 3600):02d}:{int(t % 3600 // 60):02d}:{t % 60:06.3f}"
            out += [str(n), f"{stamp} --> {end}", f"<v {seg.speaker}>{text}", ""]
            total += len(text)
    return "\n".join(out).encode()


@dataclass
class Trial:
    agent: str
    target: Target
    name: str
    kills: list[str]  # kill specs, in order; "time:<seconds>" kills from the parent
    driver: str = "sync"  # "async": the children run the graph with adrive (graph.astream)
    attempts: int = 0
    killed: int = 0
    exit_codes: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    stray: int = 0  # local: unreferenced blob files left by kills (removed by gc before checking)

    @property
    def survived(self) -> bool:
        return not self.problems


def prepare(target: Target, agent: str, name: str) -> tuple[str, str, str]:
    """A fresh data bucket with the agent's fixture object and a fresh state bucket."""
    store = target.open()
    data, state = f"d-{name}", f"s-{name}"
    store.create_bucket(data)
    store.create_bucket(state)
    store.put_object(data, AGENT_OBJECTS[agent], fixture_bytes(agent))
    store.close()
    return data, state, f"s3://{data}/{AGENT_OBJECTS[agent]}"


def run_trial(trial: Trial, *, attempt_timeout: float | None = None) -> Trial:
    """Run attempts (each with the next kill spec, then clean ones) until one finishes."""
    attempt_timeout = attempt_timeout or (600.0 if trial.agent == "minutes-long" else 60.0)
    started = time.monotonic()
    data, state, uri = prepare(trial.target, trial.agent, trial.name)
    log_path = trial.target.root / f"{trial.name}.log"
    thread_id = f"crash-{trial.name}"
    ctx = context()
    kills = list(trial.kills)
    for _ in range(len(kills) + 3):
        spec = kills.pop(0) if kills else None
        env = {**trial.target.env(state), LOG_ENV: str(log_path)}
        if spec and not spec.startswith("time:"):
            env[CRASH_ENV] = spec
        proc = ctx.Process(target=child_main, args=(trial.agent, uri, thread_id, env, trial.driver))
        proc.start()
        trial.attempts += 1
        if spec and spec.startswith("time:"):
            proc.join(float(spec.split(":")[1]))
            if proc.exitcode is None:
                proc.kill()
        proc.join(attempt_timeout)
        if proc.exitcode is None:
            proc.kill()
            proc.join()
            trial.problems.append(f"attempt {trial.attempts} hung (> {attempt_timeout}s)")
            break
        trial.exit_codes.append(proc.exitcode)
        if proc.exitcode == -signal.SIGKILL:
            trial.killed += 1
            continue
        if proc.exitcode != 0:
            trial.problems.append(f"attempt {trial.attempts} exited {proc.exitcode}")
        break
    else:
        trial.problems.append("never finished")
    if not trial.problems:
        trial.problems.extend(verify(trial, data, state, uri, log_path))
    trial.seconds = time.monotonic() - started
    return trial


# --- verification ----------------------------------------------------------------------------
def normalize(value: Any, bucket: str) -> Any:
    """An annotation payload with per-run values (times, thread/trace ids, bucket) blanked."""
    if isinstance(value, dict):
        return {k: ("*" if k in VOLATILE else normalize(v, bucket)) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize(v, bucket) for v in value]
    if isinstance(value, str):
        return value.replace(bucket, "<bucket>")
    return value


def first_difference(got: Any, want: Any, path: str = "") -> str:
    """Where two JSON values first differ, e.g. ``meeting_minutes.summary: 'a…' != 'b…'``."""
    if isinstance(got, dict) and isinstance(want, dict):
        for k in sorted(set(got) | set(want)):
            if got.get(k) != want.get(k):
                return first_difference(got.get(k), want.get(k), f"{path}.{k}" if path else k)
    if isinstance(got, list) and isinstance(want, list) and len(got) == len(want):
        for i, (a, b) in enumerate(zip(got, want, strict=False)):
            if a != b:
                return first_difference(a, b, f"{path}[{i}]")
    return f"{path}: {str(got)[:120]!r} != {str(want)[:120]!r}"


def annotations_of(store: Store, uri: str) -> dict[str, Any]:
    from marginalia.tools import large_annotations
    from marginalia.uri import parse_uri

    u = parse_uri(uri)
    names = [a.name for a in store.list_annotations(u.bucket, u.key)]
    out = {}
    for name in names:
        if re.search(r"[.#]part[.-]?\d+$|/parts?/", name):  # parts are read through their index
            continue
        out[name] = large_annotations.get_json(store, u.bucket, u.key, name)
    return out


_REFERENCE: dict[tuple[str, str], dict] = {}
_REFERENCE_WORK: dict[tuple[str, str], Counter] = {}
_REFERENCE_COUNTS: dict[tuple[str, str], dict[str, int]] = {}


def reference_work(agent: str, target: Target) -> Counter:
    reference(agent, target)
    return _REFERENCE_WORK[(agent, target.kind)]


def reference(agent: str, target: Target) -> dict:
    """Normalized annotations of an uninterrupted run (computed once per agent and target)."""
    key = (agent, target.kind)
    if key not in _REFERENCE:
        trial = run_trial(Trial(agent, target, f"ref-{agent}-{os.getpid()}-{random.randrange(1 << 30):x}", []))
        if trial.problems:
            raise AssertionError(f"the uninterrupted reference run failed: {trial.problems}")
        data = f"d-{trial.name}"
        store = target.open()
        _REFERENCE[key] = normalize(annotations_of(store, f"s3://{data}/{AGENT_OBJECTS[agent]}"), data)
        events = EventLog.read(target.root / f"{trial.name}.log")
        _REFERENCE_WORK[key] = signature(work_events(events))
        # How long a whole uninterrupted trial takes here: random time kills are drawn within it.
        _REFERENCE_COUNTS[key] = {**event_counts(events), "seconds": trial.seconds}
        store.close()
    return _REFERENCE[key]


def writes_key_task(key: str) -> str | None:
    """The task id of a checkpointer pending-writes key (``.../w/<task>/r``), else None."""
    m = re.search(r"/w/([^/]+)/", key or "")
    return m.group(1) if m else None


def work_events(events: list[dict]) -> list[dict]:
    """The real work in a log: engine calls and annotation writes on the data bucket (completed
    ones), with their node. (The trace archive that ``drive`` writes after the graph ended goes to
    the state bucket and is not graph work.)"""
    return [
        e
        for e in events
        if e["ev"] == "engine"
        or (e["ev"] == "write" and e["phase"] == "end" and e["op"] == "put_annotation" and e["bucket"].startswith("d-"))
    ]


def record_steps(store: Store, events: list[dict]) -> dict[tuple[int, str], int]:
    """For each process and checkpoint namespace, the highest ``step`` of a checkpoint record the
    process saved there (decoded from the stored record with the saver's serializer)."""
    from marginalia.checkpointers import S3Saver
    from marginalia.checkpointers.keys import NEXT, RECORD, ROOT, Layout
    from marginalia.checkpointers.records import Record

    best: dict[tuple[int, str], int] = {}
    serde = S3Saver.from_uri("s3://unused-bucket/x", store=store).serde
    for e in events:
        key = e.get("key") or ""
        if not (e["ev"] == "write" and e["phase"] == "end" and "/checkpoints/" in f"/{key}"):
            continue
        root = key[: (f"/{key}").index("/checkpoints/") + len("checkpoints/")]
        parsed = Layout(e["bucket"], root).parse(key)
        if parsed is None or parsed.kind not in (RECORD, ROOT, NEXT):
            continue
        try:
            body, _ = store.get_object(e["bucket"], key)
        except Exception:  # noqa: BLE001 - replaced later: the newer record counts instead
            continue
        if body:  # (0 bytes: a tombstone)
            step = int(serde.loads_typed(Record.decode(body, key).metadata).get("step", -1))
            where = (e["pid"], parsed.checkpoint_ns)
            best[where] = max(best.get(where, -1), step)
    return best


def landed_writes(store: Store, events: list[dict]) -> list[dict]:
    """``end`` events for pending-writes saves a kill cut between the store write and its ``end``
    line: the save began, no ``end`` was logged, the object is there, and no other process wrote
    that key (a later process that ran the task again would save it under the same key)."""
    ended = {(e["pid"], e.get("key")) for e in events if e["ev"] == "write" and e["phase"] == "end"}
    writers: dict[str, set[int]] = {}
    for e in events:
        if e["ev"] == "write" and e.get("key"):
            writers.setdefault(e["key"], set()).add(e["pid"])
    out = []
    for e in events:
        key = e.get("key")
        if e["ev"] != "write" or e["phase"] != "begin" or not writes_key_task(key) or (e["pid"], key) in ended:
            continue
        if writers[key] != {e["pid"]}:
            continue
        try:
            store.head_object(e["bucket"], key)
        except Exception:  # noqa: BLE001 - not there: the kill came before the write landed
            continue
        out.append({**e, "phase": "end"})
    return out


def completed(events: list[dict], final_pid: int, steps: dict[tuple[int, str], int]) -> list[dict]:
    """Work done by executions that completed durably: in the process that finished, or in a
    killed one that saved the task's pending writes (``.../w/<task>/``), or saved a checkpoint of
    the task's graph whose step is at least the task's (either way LangGraph resumes past the
    task and must not run it again).

    Why at least, not after: the checkpoint of step S is made (``after_tick``) only once every
    task of step S finished, from the channels with all their writes applied; the tasks of step S
    run with ``langgraph_step == S``. LangGraph's default ``durability="async"`` saves that
    checkpoint and the tasks' own ``put_writes`` in background threads, in no fixed order, so a
    kill can leave the checkpoint of step S saved and a task's ``/w/`` object not: the resumed
    run starts at step S + 1 and rightly never repeats the task.
    """
    saved = {
        (e["pid"], writes_key_task(e.get("key")))
        for e in events
        if e["ev"] == "write" and e["phase"] == "end" and writes_key_task(e.get("key"))
    }

    def checkpointed(e: dict) -> bool:
        where = (e["pid"], e.get("graph_ns") or "")
        return e.get("step") is not None and steps.get(where, -1) >= e["step"]

    return [
        e for e in work_events(events) if e["pid"] == final_pid or (e["pid"], e.get("task")) in saved or checkpointed(e)
    ]


def signature(work: list[dict]) -> Counter:
    """How many times each node did each thing: ``(node, "engine:<method>")`` for a model call,
    ``(node, "annotation:<name>")`` for an annotation write."""
    return Counter(
        (e.get("node"), f"engine:{e['method']}" if e["ev"] == "engine" else f"annotation:{e.get('name')}") for e in work
    )


def _only(kind: str, c: Counter) -> Counter:
    return Counter({k: n for k, n in c.items() if k[1].startswith(f"{kind}:")})


def check_executions(events: list[dict], final_pid: int, want: Counter, steps: dict[int, int]) -> list[str]:
    """Each completed node ran once, and each annotation was written at most once in all.

    Model calls: the completed work equals an uninterrupted run's, call for call; anything beyond
    it was done by an execution killed before its checkpoint. Annotation writes are counted over
    every process, completed or killed: a node repeated after a kill finds the annotation its
    first execution wrote and writes nothing (``nodes.annotate.write_json``).
    """
    problems = []
    got, expected = _only("engine", signature(completed(events, final_pid, steps))), _only("engine", want)
    if got != expected:
        problems.append(
            f"completed work differs from an uninterrupted run: ran more {dict(got - expected)}, "
            f"less {dict(expected - got)}"
        )
    repeated = _only("annotation", signature(work_events(events))) - _only("annotation", want)
    if repeated:
        problems.append(f"annotations written more than once over all processes: {dict(repeated)}")
    return problems


def check_objects(store: Store, data: str, state: str, thread_id: str) -> list[str]:
    """Every object of both buckets reads back whole; checkpoint objects decode with the saver."""
    import hashlib

    from marginalia.checkpointers import S3Saver
    from marginalia.checkpointers.records import Record, WritesObject

    problems = []
    saver = S3Saver.from_uri(f"s3://{state}/v1", store=store)
    for bucket in (data, state):
        for info in store.list_objects(bucket):
            body, _ = store.get_object(bucket, info.key)
            if info.etag.strip('"') != hashlib.md5(body).hexdigest() and "-" not in info.etag:
                problems.append(f"s3://{bucket}/{info.key} is torn: body does not match its ETag")
            where = f"s3://{bucket}/{info.key}"
            try:
                if "/checkpoints/" in f"/{info.key}" and body:
                    leaf = info.key.rsplit("/", 1)[-1]
                    if "/w/" in info.key:
                        for w in WritesObject.decode(body, where).writes:
                            saver.serde.loads_typed(w.value)
                    elif leaf in ("c", "n", "r"):
                        rec = Record.decode(body, where)
                        saver.serde.loads_typed(rec.checkpoint)
                        saver.serde.loads_typed(rec.metadata)
                elif info.key.endswith(".json"):
                    json.loads(body)
            except Exception as exc:  # noqa: BLE001 - any failure to decode is the finding
                problems.append(f"{where} does not decode: {exc}")
    history = list(saver.list({"configurable": {"thread_id": thread_id}}))
    if not history:
        problems.append("no checkpoints for the thread")
    return problems


def verify(trial: Trial, data: str, state: str, uri: str, log_path: Path) -> list[str]:
    problems = []
    events = EventLog.read(log_path)
    finished = [e for e in events if e["ev"] == "finished"]
    if not finished or finished[-1]["status"] != "done":
        return [f"the run did not end done: {finished}"]
    final_pid = finished[-1]["pid"]
    store = trial.target.open()
    try:
        got = normalize(annotations_of(store, uri), data)
        want = reference(trial.agent, trial.target) if not trial.name.startswith("ref-") else got
        if got != want:
            problems.append(f"final annotations differ from an uninterrupted run: {first_difference(got, want)}")
        problems += check_executions(
            events + landed_writes(store, events),
            final_pid,
            reference_work(trial.agent, trial.target)
            if not trial.name.startswith("ref-")
            else signature(work_events(events)),
            record_steps(store, events),
        )
        if trial.target.kind == "local":
            trial.stray = store.gc(older_than=0)  # blobs of writes in flight at a kill; gc's job
        problems += check_objects(store, data, state, f"crash-{trial.name}")
        from marginalia.threads import ThreadIndex
        from marginalia.uri import parse_uri

        record = ThreadIndex(store, parse_uri(f"s3://{state}/v1", require_key=False)).get(f"crash-{trial.name}")
        if record is None or record.status != "done":
            problems.append(f"thread index says {record and record.status}, not done")
    finally:
        store.close()
    return problems


def redone_engine_calls(trial: Trial) -> int:
    """Engine calls of a trial beyond an uninterrupted run's: the model work its kills threw
    away (counted from the event log, outside the killed processes)."""
    events = EventLog.read(trial.target.root / f"{trial.name}.log")
    return sum(e["ev"] == "engine" for e in events) - reference_counts(trial.agent, trial.target)["engine"]


def in_flight_engine_calls(trial: Trial) -> tuple[int, int, int]:
    """``(cut, killer, saving)`` over a trial's kills: engine calls a kill cut short (begun in a
    killed process, never returned); calls that returned but whose node a kill stopped before it
    returned in turn (an ``engine:N`` kill fires right after its Nth call); and calls whose task's
    result was being saved when the kill came (its pending-writes save begun, not ended: the store
    writes one fsynced save at a time, so a few can be under way). All were in flight; the cut
    ones never returned, so they are not in :func:`redone_engine_calls`. ``redone - killer -
    saving`` is finished work whose save had not even begun: what a save queued behind other
    work loses (issue 17 item 1), 0 when each chunk is saved as it ends."""
    events = EventLog.read(trial.target.root / f"{trial.name}.log")
    finished = [e for e in events if e["ev"] == "finished"]
    final_pid = finished[-1]["pid"] if finished else None
    begun = Counter(e["pid"] for e in events if e["ev"] == "engine-begin" and e["pid"] != final_pid)
    ended = Counter(e["pid"] for e in events if e["ev"] == "engine" and e["pid"] != final_pid)
    cut = sum(max(0, begun[pid] - ended[pid]) for pid in begun)
    killer = sum(spec.startswith("engine:") for spec in trial.kills[: trial.killed])
    saves = [e for e in events if e["ev"] == "write" and writes_key_task(e.get("key")) and e["pid"] != final_pid]
    started = {(e["pid"], writes_key_task(e["key"])) for e in saves if e["phase"] == "begin"}
    done = {(e["pid"], writes_key_task(e["key"])) for e in saves if e["phase"] == "end"}
    calls = {(e["pid"], e.get("task")) for e in events if e["ev"] == "engine" and e["pid"] != final_pid}
    saving = len(calls & (started - done))
    return cut, killer, saving


# --- planning kills -------------------------------------------------------------------------
KILL_KINDS = ("engine", "write", "annotation", "checkpoint", "time")


def event_counts(events: list[dict]) -> dict[str, int]:
    """How many of each kill point an uninterrupted run passes (to aim kills inside the run)."""
    writes = [e for e in events if e["ev"] == "write" and e["phase"] == "end"]
    return {
        "engine": sum(e["ev"] == "engine" for e in events),
        "write": len(writes),
        "annotation": sum(e["op"] == "put_annotation" for e in writes),
        "checkpoint": sum("/checkpoints/" in f"/{e.get('key') or ''}" for e in writes),
    }


def reference_counts(agent: str, target: Target) -> dict[str, int]:
    """Engine calls, writes, annotation writes, checkpoint writes of an uninterrupted run."""
    reference(agent, target)
    return _REFERENCE_COUNTS[(agent, target.kind)]


def plan_kills(
    rng: random.Random, counts: dict[str, int], *, max_kills: int = 3, duration: float | None = None
) -> list[str]:
    """1..max_kills kill specs at random points of a run. Counts restart in every process, so
    an Nth-event kill is drawn from what a whole run does (a later attempt may finish first).
    Time kills fall within the first 60% of an uninterrupted trial (``counts["seconds"]``), so
    they land before the run ends even on a fast machine."""
    if duration is None:
        duration = max(0.1, 0.6 * counts.get("seconds", 2.0))
    specs = []
    kinds = [k for k in ("engine", "write", "annotation", "checkpoint") if counts.get(k)] + ["time"]
    for _ in range(rng.randint(1, max_kills)):
        kind = rng.choice(kinds)
        if kind == "time":
            specs.append(f"time:{rng.uniform(0.05, duration):.2f}")
        elif kind == "engine":
            specs.append(f"engine:{rng.randint(1, counts['engine'])}")
        else:
            specs.append(f"{kind}:{rng.randint(1, counts[kind])}:{rng.choice(['before', 'after'])}")
    return specs


def child_start(uri: str, thread_id: str, env: dict[str, str]) -> None:
    """A first run of the minutes agent through :func:`marginalia.runtime.start` (approved at
    once), instrumented like :func:`child_main`: killed by the armed kill switch, or finished."""
    os.environ.update(env)
    from marginalia.config import open_store
    from marginalia.engines.offline import OfflineEngine
    from marginalia.runtime import drive, start

    log, kill = EventLog(env[LOG_ENV]), KillSwitch(env.get(CRASH_ENV))
    store = RecordingStore(open_store(), log, kill)
    engine = CountingEngine(OfflineEngine(), log, kill)
    result = drive(
        start("minutes", uri, {"transcript_input": None}, approve=True, thread_id=thread_id, store=store, engine=engine)
    )
    log(ev="finished", status=result.status)
    os._exit(0)
