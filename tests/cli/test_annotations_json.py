"""``annotations URI NAME --json`` carries a JSON payload as JSON (it was a string holding JSON)."""

from __future__ import annotations

import json

from marginalia.testing.cli import run_cli


def test_json_payload_is_an_object_and_text_stays_text(store_env, tmp_path):
    (tmp_path / "o.txt").write_text("object")
    assert run_cli("mb", "bkt")[0] == 0
    assert run_cli("put", str(tmp_path / "o.txt"), "s3://bkt/o.txt")[0] == 0
    assert run_cli("annotate", "s3://bkt/o.txt", "doc", "--json", '{"date": "2026-06-09", "n": [1, 2]}')[0] == 0
    (tmp_path / "note.txt").write_text("plain words, not JSON")
    assert run_cli("annotate", "s3://bkt/o.txt", "note", "--file", str(tmp_path / "note.txt"))[0] == 0

    code, out, err = run_cli("annotations", "s3://bkt/o.txt", "doc", "--json")
    assert code == 0, err
    assert json.loads(out)["payload"] == {"date": "2026-06-09", "n": [1, 2]}
    code, out, err = run_cli("annotations", "s3://bkt/o.txt", "note", "--json")
    assert code == 0 and json.loads(out)["payload"] == "plain words, not JSON"
