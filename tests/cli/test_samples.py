"""``marginalia samples DIR`` writes the inputs the README uses (before, they did not exist anywhere)."""

from __future__ import annotations

from marginalia.testing.cli import run_cli


def test_samples_writes_the_readme_inputs_and_keeps_a_changed_file(tmp_path):
    code, out, err = run_cli("samples", str(tmp_path / "walk"))
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "walk").iterdir()) == ["outline_request.txt", "q3.pdf", "standup.vtt"]
    assert (tmp_path / "walk" / "q3.pdf").read_bytes().startswith(b"%PDF")
    assert run_cli("samples", str(tmp_path / "walk"))[0] == 0  # the same files again: nothing to refuse
    (tmp_path / "walk" / "standup.vtt").write_text("mine")
    code, _, err = run_cli("samples", str(tmp_path / "walk"))
    assert code == 4 and "--overwrite" in err and (tmp_path / "walk" / "standup.vtt").read_text() == "mine"
    assert run_cli("samples", str(tmp_path / "walk"), "--overwrite")[0] == 0
    assert (tmp_path / "walk" / "standup.vtt").read_text().startswith("WEBVTT")
