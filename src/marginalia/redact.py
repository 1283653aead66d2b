"""Secrets: which values are secret, find them in bytes, mask them in text and in JSON data.

The one place that decides what a secret is, used by everything that lets text leave the process:
the Langfuse masking hooks (:mod:`marginalia.tracing`), the CLI's error lines, and the security
tests that grep every artefact of a run for leaked values.

Three kinds of secret are recognised:

* **values of secret-named environment variables** (:func:`is_secret_name`): AWS's access key id,
  and any variable ending in ``KEY``, ``SECRET``, ``TOKEN``, ``PASSWORD``, ``PASSWD``,
  ``PASSPHRASE`` or ``CREDENTIAL(S)`` (``AWS_SECRET_ACCESS_KEY``, ``LANGFUSE_SECRET_KEY``,
  ``MARGINALIA_CHECKPOINT_KEY``, ``MARGINALIA_PDF_PASSWORD`` ...), wherever the value appears.
  Values shorter than 8 characters are ignored: ``1``, ``true`` or moto's ``testing`` would mask
  ordinary words and protect nothing;
* **secret-named fields** in JSON data (``password``, ``api_key``, ``*_token``, ``authorization``
  ...; :func:`is_secret_field`): their value is masked whatever it looks like;
* **secret-looking text** (:data:`SECRET_PATTERNS`): AWS access key ids, Langfuse keys, PEM private
  keys, bearer/basic credentials and ``password=...``-style assignments.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "MASK",
    "MIN_SECRET_LENGTH",
    "SECRET_PATTERNS",
    "find_secrets",
    "is_secret_field",
    "is_secret_name",
    "mask_data",
    "printable",
    "redact",
    "secret_values",
]

MASK = "***"
MIN_SECRET_LENGTH = 8

_SECRET_NAME = re.compile(
    r"(KEY|SECRET|TOKEN|PASSWORD|PASSWD|PASSPHRASE|CREDENTIALS?)$|^AWS_ACCESS_KEY_ID$", re.IGNORECASE
)
_SECRET_FIELD = re.compile(
    r"(^|[_-])(password|passwd|passphrase|secret|token|api[_-]?key|access[_-]?key|secret[_-]?key|private[_-]?key|"
    r"credentials?|authorization|session[_-]?token)$",
    re.IGNORECASE,
)
#: Secret-looking text anywhere in a string. Patterns with three groups keep the first two (the
#: name and the ``=``) and mask the third (the value) when :func:`_looks_assigned` says it is one.
SECRET_PATTERNS = (
    re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),  # AWS access key id
    re.compile(r"\b[sp]k-lf-[A-Za-z0-9-]{8,}"),  # Langfuse keys
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL),
    re.compile(r"(?i:\bbearer)\s+[A-Za-z0-9._~+/=-]{12,}"),
    # Basic credentials are base64: not a lower-case word such as "Basic authentication".
    re.compile(r"(?i:\bbasic)\s+(?=[A-Za-z0-9._~+/=-]*[A-Z0-9+/=])[A-Za-z0-9._~+/=-]{12,}"),
    # name = value, where the name is not part of a path or a longer word (/etc/passwd: is not one)
    re.compile(
        r"(?i)(?<![\w/\\-])(aws_secret_access_key|aws_session_token|secret_key|api_key|password|passwd|token)"
        r"(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s\"',;}\]]+)"
    ),
)
#: A plain word after "name: " or "name = " is prose ("password: required", "password= is set by
#: Python"), not a value; a secret has a digit or a symbol, is long, or follows "=" directly.
_PLAIN_WORD = re.compile(r"[A-Za-z]{1,11}")


def _looks_assigned(separator: str, value: str) -> bool:
    if value[:1] in "\"'" or not separator[-1:].isspace():
        return True
    return not _PLAIN_WORD.fullmatch(value)


def is_secret_name(name: str) -> bool:
    """Whether an environment variable called ``name`` holds a secret."""
    return bool(_SECRET_NAME.search(name))


def is_secret_field(name: str) -> bool:
    """Whether a JSON field called ``name`` holds a secret (``password``, ``api_key``, ``x-token`` ...)."""
    return bool(_SECRET_FIELD.search(name))


def secret_values(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``{variable: value}`` of the secret variables set in ``env`` (default ``os.environ``)."""
    env = os.environ if env is None else env
    return {k: v for k, v in env.items() if is_secret_name(k) and v and len(v) >= MIN_SECRET_LENGTH}


def find_secrets(data: bytes | str, secrets: Mapping[str, str]) -> list[str]:
    """Names of the secrets whose value occurs in ``data`` (as UTF-8, or base64-free raw text)."""
    blob = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    return [name for name, value in secrets.items() if value.encode() in blob]


def _values(secrets: Mapping[str, str] | Iterable[str] | None) -> list[str]:
    """Secret values longest first, so a secret that contains another is masked whole."""
    values = (
        secrets.values() if isinstance(secrets, Mapping) else (secret_values().values() if secrets is None else secrets)
    )
    return sorted({v for v in values if v}, key=len, reverse=True)


def _mask_text(text: str, values: list[str], mask: str) -> str:
    for value in values:
        if value in text:
            text = text.replace(value, mask)
    for pattern in SECRET_PATTERNS:
        if pattern.groups >= 3:
            text = pattern.sub(
                lambda m: f"{m.group(1)}{m.group(2)}{mask if _looks_assigned(m.group(2), m.group(3)) else m.group(3)}",
                text,
            )
        else:
            text = pattern.sub(mask, text)
    return text


#: Characters a terminal would act on or hide: C0/C1 controls, bidi overrides and isolates,
#: zero-width characters, the BOM. S3 keys may hold them; printed, they could disguise a key.
_DECEPTIVE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


def printable(text: str) -> str:
    """``text`` with every control, bidi or zero-width character shown as an escape (``\\u202e``)."""
    return _DECEPTIVE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def redact(text: str, secrets: Mapping[str, str] | Iterable[str] | None = None, *, mask: str = MASK) -> str:
    """``text`` with every secret masked: the values of ``secrets`` (default: the secret
    environment variables, read now) and secret-looking text."""
    return _mask_text(text, _values(secrets), mask)


def mask_data(data: Any, secrets: Mapping[str, str] | Iterable[str] | None = None, *, mask: str = MASK) -> Any:
    """A copy of JSON ``data`` (dicts, lists, strings ...) with every secret masked: values of
    secret-named fields whole, and secrets inside every string (as :func:`redact`)."""
    values = _values(secrets)

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return _mask_text(item, values, mask)
        if isinstance(item, dict):
            return {
                k: mask if isinstance(k, str) and is_secret_field(k) and v not in (None, "") else walk(v)
                for k, v in item.items()
            }
        if isinstance(item, list):
            return [walk(v) for v in item]
        return item

    return walk(data)
