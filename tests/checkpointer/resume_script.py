"""Run in a NEW process by the tests: open a fresh S3Saver on the given store and resume a thread.

usage: resume_script.py <local:DIR | s3:ENDPOINT> <bucket> <prefix> <thread_id> <verdict> [key]
Prints the final state as JSON on stdout.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from graphs import review_graph  # noqa: E402
from langgraph.types import Command  # noqa: E402

from marginalia.checkpointers import S3Saver  # noqa: E402


def main() -> None:
    spec, bucket, prefix, thread_id, verdict = sys.argv[1:6]
    key = sys.argv[6] if len(sys.argv) > 6 else ""
    if spec.startswith("local:"):
        from marginalia.storage.local import LocalStore

        store = LocalStore(Path(spec[len("local:") :]))
    else:
        from marginalia.storage.s3 import S3Store

        store = S3Store(endpoint_url=spec[len("s3:") :])
    with S3Saver(store, bucket, prefix, encryption_key=key, compress="") as saver:
        graph = review_graph(saver)
        config = {"configurable": {"thread_id": thread_id}}
        before = graph.get_state(config)
        assert before.next == ("review",), before.next
        result = graph.invoke(Command(resume=verdict), config, durability="sync")
    print(json.dumps({"result": result, "pending_before": list(before.next)}))


if __name__ == "__main__":
    main()
