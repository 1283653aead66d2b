"""What test workers load with ``marginalia worker --engine-factory worker_instruments:instrumented``.

The offline engine and the local store, wrapped by the crash harness's instruments
(``tests/durability/crashkit.py``): every engine call and store write is appended to the log
file ``MARGINALIA_CRASH_LOG`` (outside the process, so a SIGKILL loses nothing), and
``MARGINALIA_CRASH_AT=engine:N`` kills the worker itself at its Nth engine call.
``MARGINALIA_TEST_ENGINE_DELAY`` (seconds) makes each engine call wait like a network call.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "durability"))

import crashkit  # noqa: E402


class Slow:
    def __init__(self, inner, delay: float):
        self._inner, self._delay = inner, delay
        self.name, self.model = inner.name, inner.model

    def __getattr__(self, attr):
        target = getattr(self._inner, attr)
        if not callable(target):
            return target

        def call(*args, **kwargs):
            time.sleep(self._delay)
            return target(*args, **kwargs)

        return call


def instrumented():
    from marginalia import context
    from marginalia.engines.offline import OfflineEngine
    from marginalia.storage.local import LocalStore

    log = crashkit.EventLog(os.environ.get(crashkit.LOG_ENV))
    kill = crashkit.KillSwitch(os.environ.get(crashkit.CRASH_ENV))
    spec = os.environ["MARGINALIA_STORE"]
    root = spec.split(":", 1)[1]
    context._DEFAULTS[("store", spec)] = crashkit.RecordingStore(LocalStore(root), log, kill)
    engine = OfflineEngine()
    delay = float(os.environ.get("MARGINALIA_TEST_ENGINE_DELAY") or 0)
    return crashkit.CountingEngine(Slow(engine, delay) if delay else engine, log, kill)
