"""Exit statuses tell a script what went wrong: 2 bad input, 3 not found, 4 conflict/busy, 5 remote failure.

Before, every refusal exited 2, so a script could not tell a typo from a missing object or a busy thread.
"""

from __future__ import annotations

import pytest

from marginalia.testing.cli import run_cli


def test_bad_input_is_2(store_env):
    code, _, err = run_cli("annotations", "not-a-uri")
    assert code == 2 and err.startswith("error:")
    assert run_cli("put")[0] == 2  # a usage error (click's own) is bad input too


def test_missing_things_are_3(store_env):
    assert run_cli("mb", "demo")[0] == 0
    code, _, err = run_cli("annotations", "s3://demo/nothing.vtt")
    assert code == 3, err
    code, _, err = run_cli("annotations", "s3://nobucket/x")
    assert code == 3, err
    code, _, err = run_cli("approve", "minutes-0123456789abcdef")
    assert code == 3 and "no thread 'minutes-0123456789abcdef'" in err


def test_a_busy_thread_is_4(store_env):
    from marginalia.config import open_store
    from marginalia.lease import thread_lease
    from marginalia.runtime import state_location

    store = open_store()
    with thread_lease(store, state_location(store), "minutes-0123456789abcdef"):
        code, _, err = run_cli("approve", "minutes-0123456789abcdef")
    assert code == 4, err
    assert "elsewhere" in err


def test_a_remote_failure_is_5(monkeypatch):
    import socket

    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MARGINALIA_STORE", f"s3:http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    code, _, err = run_cli("ls", "s3://demo")
    assert code == 5, err
    assert "Traceback" not in err


@pytest.mark.parametrize("status", [2, 3, 4, 5])
def test_the_readme_documents_each_status(status):
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Exit codes", 1)[1].split("\n#", 1)[0]
    assert f"| {status} |" in section


def _closed_port() -> int:
    import socket

    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_search_commands_use_the_same_statuses(store_env, monkeypatch):
    """Before, search/find/missing/ask ended every refusal with 2, Athena down included."""
    assert run_cli("mb", "demo")[0] == 0
    code, _, err = run_cli("search", "SELECT object_key FROM annotation_table WHERE")
    assert code == 2 and err.startswith("error:"), err
    import boto3

    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # its cached test credentials go with this test
    port = _closed_port()
    monkeypatch.setenv("MARGINALIA_STORE", f"s3:http://127.0.0.1:{port}")
    monkeypatch.setenv("MARGINALIA_STATE", "s3://state/v1")
    monkeypatch.setenv("MARGINALIA_ATHENA_OUTPUT", "s3://results/athena/")
    monkeypatch.setenv("AWS_ENDPOINT_URL_ATHENA", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    code, _, err = run_cli("find", "--name", "summary", "-b", "demo")
    assert code == 5 and "Athena could not be reached" in err, err
