"""Configuration from the environment, with embedded defaults that need no AWS account.

| variable | meaning | default |
|---|---|---|
| ``MARGINALIA_STORE`` | ``local:<dir>`` (a directory that behaves like a bucket) or ``s3`` (boto3) | ``local:<user data dir>/store`` |
| ``MARGINALIA_STATE`` | ``s3://bucket/prefix`` where checkpoints and trace archives live | ``s3://marginalia-state/v1`` on ``local``; required on ``s3`` |
| ``MARGINALIA_ENGINE`` | ``offline`` or ``bedrock:<model-id>`` | ``offline`` |
| ``MARGINALIA_CHECKPOINT_KEY`` | base64 key (32 bytes) to encrypt checkpoints at rest | unset (off) |
| ``MARGINALIA_CHECKPOINT_COMPRESS`` | ``zstd`` to compress large checkpoints | unset (off) |
| ``AWS_ENDPOINT_URL_S3`` | S3 endpoint (honoured by boto3 itself) | AWS |
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from . import storage
from .errors import ConfigurationError
from .storage.base import Store
from .uri import S3URI, parse_uri


def default_store() -> str:
    """``local:`` + the per-user data directory's ``store`` (platformdirs: on Linux
    ``$XDG_DATA_HOME/marginalia/store``, else ``~/.local/share/marginalia/store``; on macOS
    ``~/Library/Application Support/marginalia/store``), so every command finds the same store
    from any working directory. ``MARGINALIA_STORE`` overrides it."""
    import platformdirs

    return f"local:{platformdirs.user_data_path('marginalia') / 'store'}"


DEFAULT_LOCAL_STATE = "s3://marginalia-state/v1"


@dataclass(frozen=True)
class Settings:
    store: str
    state: str | None
    engine: str

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            store=(env.get("MARGINALIA_STORE") or "").strip() or default_store(),
            state=env.get("MARGINALIA_STATE") or None,
            engine=env.get("MARGINALIA_ENGINE", "offline").strip() or "offline",
        )

    @property
    def is_local(self) -> bool:
        return self.store.startswith("local:")

    def state_uri(self) -> S3URI:
        if self.state:
            return parse_uri(self.state, require_key=False)
        if self.is_local:
            return parse_uri(DEFAULT_LOCAL_STATE, require_key=False)
        raise ConfigurationError(
            "MARGINALIA_STATE is not set: with MARGINALIA_STORE=s3, name the bucket and prefix for "
            "checkpoints and archives, e.g. MARGINALIA_STATE=s3://my-bucket/marginalia"
        )


def open_store(spec: str | None = None) -> Store:
    """The :class:`~marginalia.storage.base.Store` named by ``spec`` or ``MARGINALIA_STORE``."""
    return storage.open_store(spec or Settings.from_env().store)
