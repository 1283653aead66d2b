""".ci/check-skips, which .ci/run applies to the README's test run: only the known skips pass.

Each case runs a real pytest (``-rs``, as the README's command does) on a small generated test file
and gives its output to the script, with the number of aws-marked tests as .ci/run counts them.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

CHECK = Path(__file__).resolve().parents[1] / ".ci" / "check-skips"
AWS = "live AWS tests need MARGINALIA_TEST_S3_BUCKET and AWS credentials"


def _run(tmp_path: Path, body: str, aws_tests: int) -> subprocess.CompletedProcess:
    (tmp_path / "test_generated.py").write_text("import pytest\n\n" + textwrap.dedent(body))
    pytest_run = subprocess.run(
        [sys.executable, "-m", "pytest", "-rs", "-q", "-p", "no:cacheprovider", "test_generated.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert pytest_run.returncode == 0, pytest_run.stdout[-2000:]  # pytest itself is green in every case
    (tmp_path / "out.txt").write_text(pytest_run.stdout)
    return subprocess.run(
        [sys.executable, str(CHECK), str(tmp_path / "out.txt"), str(aws_tests)], capture_output=True, text=True
    )


def test_the_live_aws_skips_pass(tmp_path):
    checked = _run(
        tmp_path,
        f"""
        @pytest.mark.aws
        @pytest.mark.parametrize("n", range(3))
        def test_on_aws(n):
            pytest.skip({AWS!r})

        def test_local():
            assert True
        """,
        aws_tests=3,
    )
    assert checked.returncode == 0, checked.stderr
    assert "skips: 3 (3 live AWS, of 3 tests marked aws; 0 other)" in checked.stdout


def test_an_unknown_skip_fails_naming_its_reason_and_place(tmp_path):
    checked = _run(
        tmp_path,
        """
        def test_s3_backed():
            pytest.skip("the S3 test server is not available yet")
        """,
        aws_tests=0,
    )
    assert checked.returncode == 1
    (line,) = checked.stderr.strip().splitlines()
    assert "does not know" in line and "the S3 test server is not available yet" in line
    assert "test_generated.py:5" in line


def test_more_live_aws_skips_than_aws_tests_fail(tmp_path):
    """A local test skipping under the live-AWS reason (the store fixture handing it the AWS backend,
    say) is caught: more skips for want of AWS than tests that need it."""
    checked = _run(
        tmp_path,
        f"""
        @pytest.mark.aws
        def test_on_aws():
            pytest.skip({AWS!r})

        def test_local_but_skipped_as_aws():
            pytest.skip({AWS!r})
        """,
        aws_tests=1,
    )
    assert checked.returncode == 1
    assert "2 test(s) skipped for want of live AWS, but only 1 carry the aws marker" in checked.stderr


def test_a_counted_reason_may_not_skip_more(tmp_path):
    checked = _run(
        tmp_path,
        """
        @pytest.mark.parametrize("n", range(2))
        def test_render(n):
            pytest.skip("LibreOffice not installed")
        """,
        aws_tests=0,
    )
    assert checked.returncode == 1 and "at most 1 known" in checked.stderr
