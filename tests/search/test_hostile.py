"""Hostile search input (issue 17): a catastrophic regex, deep nesting, and a slow query must not
take the engine, the CLI or the MCP server down.

Each test runs the real thing (the catalogue, the CLI in a child process, the MCP server over
stdio) under a generous deadline: a deadline missed is the failure, not a speed figure.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from marginalia.errors import QueryError

BUCKET = "team-meetings.2026"  # conftest.build_corpus
EVIL = "(a+)+$"  # exponential for a backtracking engine on "aaaa…ab"
DEADLINE = 120.0  # seconds; the work itself takes milliseconds


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, corpus_builder):
    """A store with one annotation made for the evil pattern (a's then a b)."""
    store = corpus_builder(tmp_path_factory.mktemp("hostile"))
    store.put_annotation(BUCKET, "meetings/2026-06-10-eks-upgrade.mp4", "note", ("a" * 48 + "b").encode())
    yield store
    store.close()


def _env(store) -> dict[str, str]:
    return {**os.environ, "MARGINALIA_STORE": f"local:{store.root}"}


def _cli(store, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "marginalia", *args],
        env=_env(store),
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )


def test_a_catastrophic_regex_runs_in_linear_time_on_the_cli(hostile):
    """Python's ``re`` would backtrack ~2^48 times (and hold the GIL); RE2 answers at once."""
    sql = f"SELECT object_key FROM annotation_table WHERE name = 'note' AND regexp_like(text_value, '{EVIL}')"
    result = _cli(hostile, "search", sql, "--json")  # TimeoutExpired = the engine backtracks
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rows"] == []


def test_patterns_only_a_backtracking_engine_runs_are_one_line(hostile):
    from marginalia.search.local import LocalSearch

    with LocalSearch(hostile) as search:
        for pattern in (r"(a)\1", "(?=a)a", "(?<!x)a"):
            with pytest.raises(QueryError, match=r"invalid regular expression .*\(RE2 syntax\)"):
                search.run(f"SELECT 1 FROM annotation WHERE regexp_like(text_value, '{pattern}')")


@pytest.mark.parametrize("depth", [60, 400])
def test_deep_nesting_is_one_line_not_a_traceback(hostile, depth):
    sql = "SELECT " + "(" * depth + "1" + ")" * depth + " FROM annotation_table"
    result = _cli(hostile, "search", sql)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]  # one line
    assert "nested too deeply" in result.stderr and "Traceback" not in result.stderr


def test_a_long_chain_without_parentheses_is_refused_or_answered_never_a_traceback(hostile):
    from marginalia.search.local import LocalSearch

    with LocalSearch(hostile) as search:
        sql = "SELECT count(*) FROM annotation WHERE " + " OR ".join(["size = 1"] * 3000)
        try:
            assert search.run(sql).rows == [(0,)]
        except QueryError as exc:
            assert "\n" not in str(exc) and ("too deep" in str(exc) or "too large" in str(exc))


async def test_mcp_answers_other_calls_while_a_query_runs(hostile):
    """A runaway query (it only ends at the 30 s query limit) and an evil regex are in flight; the
    same MCP server answers a search and a read meanwhile, and the runaway query is stopped."""
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "marginalia.search.mcp_server"],
        env={"MARGINALIA_STORE": f"local:{hostile.root}", "PATH": os.environ.get("PATH", ""),
             "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
    )  # fmt: skip
    runaway = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"
    evil = f"SELECT object_key FROM annotation_table WHERE regexp_like(text_value, '{EVIL}')"
    async with asyncio.timeout(DEADLINE), Client(params) as client:
        slow = asyncio.create_task(client.call_tool("search", {"sql": runaway}))
        await asyncio.sleep(0.5)  # let it start
        regex = await client.call_tool("search", {"sql": evil})
        assert not regex.is_error and regex.structured_content["rows"] == []
        other = await client.call_tool(
            "search", {"sql": "SELECT count(*) AS n FROM annotation_table WHERE name = 'note'"}
        )
        assert not other.is_error and other.structured_content["rows"][0]["n"] >= 1
        read = await client.call_tool(
            "get_annotation", {"uri": f"s3://{BUCKET}/meetings/2026-06-10-eks-upgrade.mp4", "name": "note"}
        )
        assert read.structured_content["value"].startswith("aaaa")
        assert not slow.done()  # answered while the runaway query was still running
        stopped = await slow
        assert stopped.is_error and "longer than 30 s" in stopped.content[0].text
