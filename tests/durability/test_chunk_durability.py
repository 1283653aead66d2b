"""Each finished chunk of a long meeting is durable when it finishes (issue 17 item 1).

The minutes agent fans out one ``extract_chunk`` per chunk of a 37-chunk meeting; the run is
SIGKILLed right after its Nth model call (a real child process, with the sync or the async
driver), resumed in a new process, and the model calls are
counted across the kill from the event log (a file, outside the processes). Before the fix the
chunk results reached the checkpointer only when the whole fan-out ended, so the resume made
every chunk's call again; now at most the chunks in flight are redone.
"""

from __future__ import annotations

import crashkit
import pytest

from marginalia.nodes.minutes import CHUNKS_AT_ONCE

pytestmark = pytest.mark.timeout(900)


@pytest.mark.parametrize(
    ("driver", "killed_after"),
    [("sync", 20), ("sync", 33), ("async", 20), ("async", 33)],
)
def test_a_kill_mid_fan_out_redoes_only_the_chunks_in_flight(local_target, driver, killed_after):
    """Both drivers: ``drive`` (graph.stream) and ``adrive`` (graph.astream, where LangGraph runs
    the sync chunk nodes on the event loop's default executor: a save queued there waited for
    every chunk not yet started)."""
    counts = crashkit.reference_counts("minutes-long", local_target)
    assert counts["engine"] >= crashkit.LONG_CHUNKS  # one call per chunk, then the merge
    trial = crashkit.run_trial(
        crashkit.Trial(
            "minutes-long", local_target, f"long-{driver}-{killed_after}", [f"engine:{killed_after}"], driver=driver
        )
    )
    assert trial.killed == 1 and trial.survived, trial.problems  # and the result equals an uninterrupted run's
    redone = crashkit.redone_engine_calls(trial)
    cut, killer, saving = crashkit.in_flight_engine_calls(trial)
    # redone: the killing call's chunk and at most the chunks whose save was under way (the store
    # writes one fsynced save at a time; a save begun may still land before the kill takes the
    # process, and then its chunk is not redone); never a finished chunk whose save had not begun
    # (the bug: 20 of 20)
    assert killer <= redone <= killer + saving, f"{redone} model calls redone after a kill at call {killed_after}"
    assert 0 <= redone <= CHUNKS_AT_ONCE + saving, f"{redone} redone, {saving} saves under way"


class TranscriptReads(crashkit.RecordingStore):
    """Counts the reads of the ``transcript`` annotation (each is a parse of the whole meeting)."""

    reads = 0

    def get_annotation(self, bucket, key, name, *, version_id=None):
        if name == "transcript":
            TranscriptReads.reads += 1
        return self.inner.get_annotation(bucket, key, name, version_id=version_id)


def test_the_transcript_is_read_and_parsed_once_not_once_per_chunk(tmp_path, monkeypatch):
    """16 chunks, one read of the transcript for the plan, the chunks and the merge (issue 17
    item 2: each chunk used to read and parse the whole transcript again)."""
    import marginalia
    from marginalia.storage.local import LocalStore

    monkeypatch.setenv("MARGINALIA_STORE", f"local:{tmp_path}")
    store = TranscriptReads(LocalStore(tmp_path))
    store.create_bucket("meet")
    store.put_object("meet", "m/long.vtt", crashkit.long_meeting_vtt(16 * 2_000))
    chunks = []
    result = marginalia.minutes(
        "s3://meet/m/long.vtt",
        store=store,
        chunk_chars=2_000,
        engine="offline",
        on_update=lambda node, update: chunks.append(node) if node == "extract_chunk" else None,
    )
    assert result.status == "waiting" and len(chunks) >= 16
    # the transcript node's write-once check (nothing there yet); the plan and the chunks use the
    # transcript the node parsed (a resumed process reads the annotation once instead)
    assert TranscriptReads.reads <= 1, f"{TranscriptReads.reads} reads of the transcript for {len(chunks)} chunks"
