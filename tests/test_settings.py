"""Every ``MARGINALIA_*`` variable is declared in :mod:`marginalia.settings` and read only there.

Before, 16+ variables were read with ``os.environ.get`` in a dozen modules (the lease TTL once,
at import time), each with its own parsing: a bad value surfaced as a traceback far from the
variable, or silently fell back to a default. These tests fail when a variable is read anywhere
else, when a name in ``src``, the README's configuration table or ``.env.example`` is not
declared (or a declared one is missing there), when ``.env.example`` shows a wrong default, or
when a bad value is not refused in one line naming its variable.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from marginalia import settings as settings_module
from marginalia.errors import ConfigurationError
from marginalia.redact import is_secret_name
from marginalia.settings import Settings, current

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "marginalia"
NAME = re.compile(r"\bMARGINALIA_[A-Z0-9_]*[A-Z0-9]\b")
DECLARED = set(Settings.variables())


def test_every_marginalia_name_in_src_is_declared():
    """Code, messages and docstrings of ``src`` name only declared variables (``MARGINALIA_X_*``
    prefixes in prose end with ``_`` and are not names)."""
    named = {
        (name, str(path.relative_to(REPO)))
        for path in SRC.rglob("*.py")
        for name in NAME.findall(path.read_text(encoding="utf-8"))
    }
    assert {(name, where) for name, where in named if name not in DECLARED} == set()


def _env_reads(tree: ast.AST) -> list[tuple[int, str]]:
    """``(line, name)`` of every lookup of a ``MARGINALIA_*`` name: ``x.get(NAME)``,
    ``getenv(NAME)``, ``x[NAME]``, ``x.pop(NAME)``, where NAME is the string or a constant bound to it."""
    constants = {
        target.id: node.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name)
    }

    def variable(arg: ast.AST) -> str | None:
        value = arg.value if isinstance(arg, ast.Constant) else constants.get(getattr(arg, "id", ""))
        return value if isinstance(value, str) and value.startswith("MARGINALIA_") else None

    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("get", "getenv", "pop", "setdefault") and (name := variable(node.args[0])):
                found.append((node.lineno, name))
        elif isinstance(node, ast.Subscript) and (name := variable(node.slice)):
            found.append((node.lineno, name))
    return found


def test_no_module_but_settings_reads_a_marginalia_variable():
    reads = [
        f"{path.relative_to(REPO)}:{line} reads {name}"
        for path in SRC.rglob("*.py")
        if path != SRC / "settings.py"
        for line, name in _env_reads(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert reads == [], "read these through marginalia.settings.current() instead"


def test_the_read_detector_finds_the_forms_it_looks_for():
    tree = ast.parse(
        'import os\nTTL = "MARGINALIA_LEASE_TTL"\n'
        'a = os.environ.get("MARGINALIA_STORE")\nb = os.getenv(TTL)\nc = env["MARGINALIA_ENGINE"]\n'
        'd = os.environ.get("HOME")\n'
    )
    assert [name for _, name in _env_reads(tree)] == ["MARGINALIA_STORE", "MARGINALIA_LEASE_TTL", "MARGINALIA_ENGINE"]


def _readme_table_names() -> set[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in NAME.findall(row.split(" | ")[0])}


def test_the_readme_configuration_table_names_every_setting_and_no_other():
    names = _readme_table_names()
    assert DECLARED - names == set(), "add a row to the README's configuration table"
    assert names - DECLARED == set(), "declare the variable in marginalia.settings"


def _env_example() -> dict[str, str]:
    """``{NAME: value shown}`` of the ``# NAME=value  # comment`` lines of .env.example."""
    text = (REPO / ".env.example").read_text(encoding="utf-8")
    lines = re.finditer(r"^#?\s*(MARGINALIA_[A-Z0-9_]+)=(.*)$", text, re.M)
    return {m.group(1): re.split(r"\s+#", m.group(2), maxsplit=1)[0].strip() for m in lines}


def test_env_example_lists_every_setting_and_no_other():
    shown = set(_env_example())
    assert DECLARED - shown == set(), "add the variable to .env.example"
    assert shown - DECLARED == set(), "declare the variable in marginalia.settings"


def test_env_example_shows_each_declared_default_and_valid_examples():
    example = _env_example()
    fixed_defaults = {
        name: info.default
        for name, info in Settings.variables().items()
        if info.default_factory is None and info.default is not None
    }
    assert fixed_defaults  # engine, lease TTL, transcribe prefix, Temporal namespace/queue/TLS/heartbeat
    shown = Settings.from_env({name: example[name] for name in fixed_defaults})
    for name in fixed_defaults:  # an empty value means "the default"
        field = name.removeprefix("MARGINALIA_").lower()
        assert getattr(shown, field) == fixed_defaults[name], f".env.example shows {name}={example[name]!r}"
    Settings.from_env(example)  # every example value there is one the settings accept


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("MARGINALIA_LEASE_TTL", "soon", "a number of seconds > 0"),
        ("MARGINALIA_LEASE_TTL", "-5", "greater than 0"),
        ("MARGINALIA_TEMPORAL_HEARTBEAT", "0", "greater than 0"),
        ("MARGINALIA_CHECKPOINT_COMPRESS", "lz4", "'zstd' or unset"),
        ("MARGINALIA_STATE", "http://bucket/prefix", "s3://bucket/prefix"),
        ("MARGINALIA_TEMPORAL", "no-port", "host:port"),
        ("MARGINALIA_TEMPORAL_TLS", "maybe", "1/true/yes or 0/false/no"),
    ],
)
def test_a_bad_value_is_refused_in_one_line_naming_the_variable(variable, value, says):
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_env({variable: value})
    message = str(refused.value)
    assert message.startswith(f"{variable}={value!r} is not valid: ") and says in message
    assert "\n" not in message


def test_a_secret_is_never_repeated_in_a_repr():
    shown = Settings.from_env({"MARGINALIA_PDF_PASSWORD": "hunter2-hunter2", "MARGINALIA_CHECKPOINT_KEY": "k" * 44})
    assert "hunter2" not in repr(shown) and "k" * 44 not in repr(shown)
    assert shown.pdf_password is not None and shown.pdf_password.get_secret_value() == "hunter2-hunter2"


def test_every_secret_setting_is_masked_by_name_in_logs_and_traces():
    """The redactor masks a variable's value by its name: each secret setting must match."""
    secrets = [name for name, info in Settings.variables().items() if "SecretStr" in str(info.annotation)]
    assert sorted(secrets) == ["MARGINALIA_CHECKPOINT_KEY", "MARGINALIA_PDF_PASSWORD", "MARGINALIA_TEMPORAL_API_KEY"]
    assert [name for name in secrets if not is_secret_name(name)] == []


def test_an_empty_value_counts_as_unset_and_only_the_given_mapping_is_read(monkeypatch):
    monkeypatch.setenv("MARGINALIA_ENGINE", "bedrock:from-the-process")
    given = Settings.from_env({"MARGINALIA_ENGINE": "  ", "MARGINALIA_LEASE_TTL": "7"})
    assert given.engine == "offline" and given.lease_ttl == 7.0


def test_current_follows_the_environment(monkeypatch):
    monkeypatch.setenv("MARGINALIA_ENGINE", "bedrock:one")
    assert current().engine == "bedrock:one"
    monkeypatch.setenv("MARGINALIA_ENGINE", "bedrock:two")
    assert current().engine == "bedrock:two"
    monkeypatch.delenv("MARGINALIA_ENGINE")
    assert current().engine == "offline"


def test_the_lease_ttl_is_read_when_a_lease_is_taken_not_at_import(monkeypatch, tmp_path):
    from marginalia.lease import thread_lease
    from marginalia.storage.local import LocalStore
    from marginalia.uri import parse_uri

    monkeypatch.setenv("MARGINALIA_LEASE_TTL", "7")  # after marginalia.lease was imported
    with LocalStore(tmp_path, auto_create_buckets=True) as store:
        with thread_lease(store, parse_uri("s3://state/v1", require_key=False), "t-ttl") as lease:
            assert lease.ttl == 7.0


def test_config_keeps_its_settings_names():
    """``from marginalia.config import Settings`` (and ``Settings.from_env()``) keep working."""
    from marginalia import config

    assert config.Settings is Settings and config.default_store is settings_module.default_store
    assert config.Settings.from_env({"MARGINALIA_STORE": "s3"}).store == "s3"


def test_the_cli_refuses_a_bad_setting_in_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARGINALIA_")}
    env.update(MARGINALIA_STORE=f"local:{tmp_path}", MARGINALIA_LEASE_TTL="soon", PYTHONPATH=str(REPO / "src"))
    done = subprocess.run(
        [sys.executable, "-m", "marginalia", "threads"], env=env, capture_output=True, text=True, timeout=120
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0 and len(lines) == 1, done.stderr
    assert "MARGINALIA_LEASE_TTL='soon' is not valid" in lines[0]
