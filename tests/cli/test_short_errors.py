"""A JSON Patch that does not apply and a SQL typo each get one short line pointing at the problem.

Before, a failed patch printed the whole proposal (~2,000 characters) in one line, and a SQL typo
showed sqlglot internals (``<class 'sqlglot.expressions.core.Mul'>``).
"""

from __future__ import annotations

import json

import pytest

from marginalia.errors import InvalidInput, QueryError
from marginalia.nodes.review import apply_patch
from marginalia.search.sql import parse
from marginalia.testing.cli import run_cli

PROPOSAL = {"summary": "word " * 400, "action_items": [{"owner": "Priya", "task": "book the window"}]}


@pytest.mark.parametrize(
    "patch, says",
    [
        ([{"op": "test", "path": "/summary", "value": "other"}], "operation 1 (test /summary)"),
        ([{"op": "replace", "path": "/action_items/0/x/y", "value": 1}], "operation 1 (replace /action_items/0/x/y)"),
        (
            [{"op": "add", "path": "/title", "value": "t"}, {"op": "remove", "path": "/action_items/7"}],
            "operation 2 (remove /action_items/7)",
        ),
        ([{"op": "nope", "path": "/a"}], "operation 1 (nope /a)"),
    ],
)
def test_a_patch_that_does_not_apply_is_one_short_line(patch, says):
    with pytest.raises(InvalidInput) as caught:
        apply_patch(PROPOSAL, patch)
    message = str(caught.value)
    assert says in message and len(message) < 200 and "word word" not in message


def test_a_patch_through_the_cli_keeps_the_thread_waiting(store_env, tmp_path):
    assert run_cli("samples", str(tmp_path / "in"))[0] == 0
    assert run_cli("mb", "demo")[0] == 0
    assert run_cli("put", str(tmp_path / "in" / "standup.vtt"), "s3://demo/m.vtt")[0] == 0
    assert run_cli("minutes", "s3://demo/m.vtt", "--thread", "m-1")[0] == 0
    (tmp_path / "edit.json").write_text(json.dumps([{"op": "test", "path": "/summary", "value": "nope"}]))
    code, _, err = run_cli("approve", "m-1", "--edit", str(tmp_path / "edit.json"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and len(err) < 250, err
    assert "operation 1 (test /summary)" in err


@pytest.mark.parametrize(
    "sql, says",
    [
        ("SELECT object_key * FROM annotation_table", "line 1, column 24, at 'FROM': * is missing an operand"),
        ("SELECT * FROM annotation_table WHERE name = 'x' AND", "AND is missing an operand"),
        ("SELEC 1", "line 1, column 7"),
    ],
)
def test_a_sql_typo_is_one_line_in_sql_terms(sql, says):
    with pytest.raises(QueryError) as caught:
        parse(sql)
    message = str(caught.value)
    assert says in message and "sqlglot" not in message and "<class" not in message
