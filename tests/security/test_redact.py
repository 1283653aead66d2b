"""One definition of a secret (marginalia.redact), used by the Langfuse hooks and the CLI's errors."""

from __future__ import annotations

import secrets

from marginalia import tracing
from marginalia.redact import mask_data, redact, secret_values
from marginalia.testing.cli import run_cli


def test_secret_variables_by_name_and_length():
    env = {
        "AWS_ACCESS_KEY_ID": "AKIA0000EXAMPLE00000",
        "LANGFUSE_SECRET_KEY": "sk-lf-0123456789",
        "MARGINALIA_PDF_PASSWORD": "correct horse",
        "GITHUB_TOKEN": "ghp_0123456789",
        "SERVICE_APIKEY": "0123456789abcdef",
        "AWS_ACCESS_KEY_ID_OLD": "not-secret-by-name",
        "FEATURE_FLAG": "enabled-everywhere",
        "SHORT_TOKEN": "testing",  # 7 characters: masking it would mask the word everywhere
        "MARGINALIA_LEASE_TTL": "120000000",
    }
    assert sorted(secret_values(env)) == [
        "AWS_ACCESS_KEY_ID",
        "GITHUB_TOKEN",
        "LANGFUSE_SECRET_KEY",
        "MARGINALIA_PDF_PASSWORD",
        "SERVICE_APIKEY",
    ]


def test_redact_masks_values_longest_first_and_secret_looking_text():
    outer, inner = "outer-" + secrets.token_hex(8), secrets.token_hex(8)
    text = f"a={outer}{inner} b={inner} id AKIA{secrets.token_hex(8).upper()} Authorization: Bearer abcdefghijklmnop"
    masked = redact(text, {"A_KEY": outer + inner, "B_KEY": inner})
    assert outer not in masked and inner not in masked and "AKIA" not in masked and "abcdefghijklmnop" not in masked
    assert masked.startswith("a=*** b=*** id *** Authorization: ***")
    assert redact("password = hunter22 and api_key: 'k-1'", {}) == "password = *** and api_key: ***"


def test_mask_data_masks_secret_fields_whole_and_strings_inside():
    token = secrets.token_hex(12)
    data = {
        "user": "ana",
        "api_key": "short",
        "nested": [{"x-session-token": 7}, f"the token is {token}"],
        "password": "",
        "count": 3,
    }
    masked = mask_data(data, {"T_TOKEN": token})
    assert masked == {
        "user": "ana",
        "api_key": "***",
        "nested": [{"x-session-token": "***"}, "the token is ***"],
        "password": "",
        "count": 3,
    }
    assert data["api_key"] == "short"  # a copy: the input is untouched


def test_langfuse_hook_uses_the_same_definition(monkeypatch):
    value = "svc-" + secrets.token_hex(10)
    monkeypatch.setenv("PAYMENTS_CREDENTIALS", value)
    masked = tracing.mask_secrets(data={"text": f"pay with {value}", "passphrase": "x"})
    assert masked == {"text": f"pay with {tracing.REDACTED}", "passphrase": tracing.REDACTED}


def test_cli_error_lines_mask_secrets_and_print_keys_literally(monkeypatch, tmp_path):
    secret_key = "k" + secrets.token_hex(10)
    monkeypatch.setenv("MARGINALIA_STORE", f"local:{tmp_path}")
    monkeypatch.setenv("SOME_SERVICE_TOKEN", secret_key)
    code, out, err = run_cli("mb", "s3://docs")
    assert code == 0, err
    # An error quoting a secret (here: a key the user pasted one into) shows it masked.
    code, out, err = run_cli("get", f"s3://docs/{secret_key}.txt", str(tmp_path / "out"))
    assert code == 3 and secret_key not in err and "s3://docs/***.txt" in err, err
    # Brackets in a key are text, not rich markup: the line says exactly which key.
    code, out, err = run_cli("get", "s3://docs/logs/[bold]/x.txt", str(tmp_path / "out"))
    assert code == 3 and "s3://docs/logs/[bold]/x.txt" in err and len(err.strip().splitlines()) == 1, err
