"""Secrets in the environment: which values are secret, find them in bytes, mask them in text.

A value is secret when its variable is a credential by name: AWS's access key id, secret key and
session token, Langfuse's secret key, and any ``*_KEY``, ``*_SECRET``, ``*_TOKEN``,
``*_PASSWORD`` variable (``MARGINALIA_CHECKPOINT_KEY``, ``MARGINALIA_PDF_PASSWORD`` ...). Values
shorter than 8 characters are ignored (they would match by accident: ``1``, ``true``, ``testing``).

Used by the security tests to grep every artefact of a run for leaked values, and by anything
that prints configuration or errors (:func:`redact`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

__all__ = ["find_secrets", "is_secret_name", "redact", "secret_values"]

_SECRET_NAME = re.compile(r"(_KEY|_SECRET|_TOKEN|_PASSWORD|_PASSPHRASE|_CREDENTIALS?)$|^AWS_ACCESS_KEY_ID$", re.I)
_NOT_SECRET = frozenset({"MARGINALIA_LEASE_TTL"})
MIN_SECRET_LENGTH = 8


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name)) and name not in _NOT_SECRET


def secret_values(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``{variable: value}`` of the secret variables set in ``env`` (default ``os.environ``)."""
    env = os.environ if env is None else env
    return {k: v for k, v in env.items() if is_secret_name(k) and v and len(v) >= MIN_SECRET_LENGTH}


def find_secrets(data: bytes | str, secrets: Mapping[str, str]) -> list[str]:
    """Names of the secrets whose value occurs in ``data`` (as UTF-8, or base64-free raw text)."""
    blob = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    return [name for name, value in secrets.items() if value.encode() in blob]


def redact(text: str, secrets: Mapping[str, str] | Iterable[str] | None = None) -> str:
    """``text`` with every secret value replaced by ``***``."""
    values = secrets.values() if isinstance(secrets, Mapping) else (secrets or secret_values().values())
    for value in sorted(values, key=len, reverse=True):
        if value:
            text = text.replace(value, "***")
    return text
