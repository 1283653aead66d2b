"""Every ``MARGINALIA_*`` setting, declared and read in this one module.

:class:`Settings` declares each variable once — its field name is the variable without the
``MARGINALIA_`` prefix, with its type, default and meaning — and :meth:`Settings.from_env` reads
them from a mapping (default ``os.environ``): an empty value counts as unset, and a bad value is
refused with one line naming the variable, e.g.
``MARGINALIA_LEASE_TTL='soon' is not valid: a number of seconds > 0 (input should be a valid number)``.

:func:`current` is what modules call: the settings of the process's environment *now* (rebuilt
only when a ``MARGINALIA_*`` variable changed, so a test or a notebook that sets one is seen at
once; nothing is read at import time). Secrets are :class:`~pydantic.SecretStr` (``repr`` shows
``'**********'``). Modules get their settings from here; :mod:`marginalia.storage` reads none and
is given its values (the import-layer contract in pyproject keeps it that way).

``tests/test_settings.py`` fails when a ``MARGINALIA_*`` name appears in ``src`` without being
declared here, when the README's configuration table or ``.env.example`` misses a declared
variable, or when ``.env.example`` shows another default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from .errors import ConfigurationError

if TYPE_CHECKING:
    from .uri import S3URI

__all__ = ["DEFAULT_LOCAL_STATE", "PREFIX", "Settings", "current", "default_store", "env_name"]

PREFIX = "MARGINALIA_"
DEFAULT_LOCAL_STATE = "s3://marginalia-state/v1"
DEFAULT_TRANSCRIBE_PREFIX = ".marginalia/transcribe/"


def default_store() -> str:
    """``local:`` + the per-user data directory's ``store`` (platformdirs: on Linux
    ``$XDG_DATA_HOME/marginalia/store``, else ``~/.local/share/marginalia/store``; on macOS
    ``~/Library/Application Support/marginalia/store``), so every command finds the same store
    from any working directory. ``MARGINALIA_STORE`` overrides it."""
    import platformdirs

    return f"local:{platformdirs.user_data_path('marginalia') / 'store'}"


def env_name(field: str) -> str:
    """The environment variable of a :class:`Settings` field (``lease_ttl`` → ``MARGINALIA_LEASE_TTL``)."""
    return PREFIX + field.upper()


class Settings(BaseModel):
    """The ``MARGINALIA_*`` variables (see the module docstring); build with :meth:`from_env`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # --- where things live -------------------------------------------------------------------
    store: str = Field(
        default_factory=default_store,
        description="`local:<dir>` (a directory that behaves like a bucket) or `s3` (boto3)",
    )
    state: str | None = Field(
        None,
        description="`s3://bucket/prefix` for checkpoints, the thread index, leases and trace archives "
        f"(default `{DEFAULT_LOCAL_STATE}` on a local store; required with `s3`)",
    )
    # --- the engine --------------------------------------------------------------------------
    engine: str = Field("offline", description="`offline` or `bedrock:<model-id>`")
    # --- checkpoints and runs ----------------------------------------------------------------
    checkpoint_key: SecretStr | None = Field(
        None, description="base64 32-byte key: checkpoints encrypted at rest (AES-GCM)"
    )
    checkpoint_compress: Literal["zstd"] | None = Field(None, description="`zstd`: compress large checkpoints")
    lease_ttl: float = Field(120.0, gt=0, description="seconds a worker's lease on a thread lasts unless renewed")
    # --- agents ------------------------------------------------------------------------------
    pdf_password: SecretStr | None = Field(None, description="password of encrypted PDFs (never stored)")
    transcribe_prefix: str = Field(
        DEFAULT_TRANSCRIBE_PREFIX,
        description="key prefix, in the recording's bucket, where Amazon Transcribe writes its output",
    )
    # --- search on AWS -----------------------------------------------------------------------
    athena_workgroup: str | None = Field(None, description="the Athena workgroup search queries run in")
    athena_output: str | None = Field(None, description="`s3://bucket/prefix/` where Athena writes query results")
    # --- tracing -----------------------------------------------------------------------------
    user: str | None = Field(None, description="the user shown in Langfuse")
    # --- Temporal ----------------------------------------------------------------------------
    temporal: str | None = Field(None, description="`host:port` of Temporal: runs as workflows when set")
    temporal_namespace: str = Field("default", description="Temporal namespace")
    temporal_task_queue: str = Field("marginalia", description="task queue workers poll and runs are sent to")
    temporal_tls: bool = Field(False, description="`1` for TLS with the system roots (implied by the files below)")
    temporal_tls_ca: Path | None = Field(None, description="PEM file: the server's CA")
    temporal_tls_cert: Path | None = Field(None, description="PEM file: the client certificate (mTLS)")
    temporal_tls_key: Path | None = Field(None, description="PEM file: the client key (mTLS)")
    temporal_api_key: SecretStr | None = Field(None, description="API key (Temporal Cloud); implies TLS")
    temporal_heartbeat: float = Field(
        30.0, gt=0, description="seconds without a heartbeat before a run's worker counts as dead"
    )
    # --- tests and benchmarks ----------------------------------------------------------------
    shared_fixtures: Path | None = Field(
        None, description="the developers' shared fixtures (default `../shared/fixtures` beside the checkout)"
    )

    @field_validator("state")
    @classmethod
    def _state_is_an_s3_uri(cls, value: str | None) -> str | None:
        if value is not None:
            from .errors import MarginaliaError
            from .uri import parse_uri

            try:
                parse_uri(value, require_key=False)
            except MarginaliaError as exc:  # InvalidURI: its message says what is wrong
                raise ValueError(f"an s3://bucket/prefix URI ({exc})") from None
        return value

    @field_validator("temporal")
    @classmethod
    def _temporal_is_host_port(cls, value: str | None) -> str | None:
        if value is not None:
            host, _, port = value.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError("host:port (e.g. 127.0.0.1:7233)")
        return value

    @field_validator("checkpoint_compress", mode="before")
    @classmethod
    def _lower_case(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings in ``env`` (default ``os.environ``); ConfigurationError naming a bad variable."""
        env = os.environ if env is None else env
        values = {}
        for name in cls.model_fields:
            raw = env.get(env_name(name))
            if raw is not None and raw.strip():
                values[name] = raw.strip()
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise ConfigurationError(_one_line(exc, values)) from None

    @classmethod
    def variables(cls) -> dict[str, Any]:
        """``{MARGINALIA_<NAME>: field info}`` of every setting, in declaration order (docs and tests)."""
        return {env_name(name): info for name, info in cls.model_fields.items()}

    # --- what callers ask ----------------------------------------------------------------------
    @property
    def is_local(self) -> bool:
        return self.store.startswith("local:")

    def state_uri(self) -> S3URI:
        """Where checkpoints and archives live."""
        from .uri import parse_uri

        if self.state:
            return parse_uri(self.state, require_key=False)
        if self.is_local:
            return parse_uri(DEFAULT_LOCAL_STATE, require_key=False)
        raise ConfigurationError(
            "MARGINALIA_STATE is not set: with MARGINALIA_STORE=s3, name the bucket and prefix for "
            "checkpoints and archives, e.g. MARGINALIA_STATE=s3://my-bucket/marginalia"
        )

    @property
    def temporal_configured(self) -> bool:
        return self.temporal is not None


def _expected(name: str) -> str:
    """What a setting takes, in words, from its declared type and bounds."""
    info = Settings.model_fields[name]
    text = str(info.annotation)
    if "float" in text:
        return "a number of seconds > 0"
    if "bool" in text:
        return "1/true/yes or 0/false/no"
    if "Literal" in text:
        return "'zstd' or unset"
    return info.description or "a valid value"


def _one_line(exc: ValidationError, values: Mapping[str, str]) -> str:
    """``MARGINALIA_<NAME>='value' is not valid: <what it takes> (<why>)`` for the first bad variable."""
    error = exc.errors()[0]
    field = str(error["loc"][0]) if error.get("loc") else ""
    if field not in Settings.model_fields:
        return f"bad MARGINALIA_* settings: {error['msg']}"
    shown = repr(values.get(field, ""))  # never a secret's: a SecretStr accepts any text
    why = str(error["msg"])
    if error["type"] == "value_error":  # a validator of this module: it says what the setting takes
        detail = why.removeprefix("Value error, ")
    else:
        detail = f"{_expected(field)} ({why[:1].lower()}{why[1:]})"
    return f"{env_name(field)}={shown} is not valid: {detail}"


_CACHE: tuple[tuple[str | None, ...], Settings] | None = None


def current() -> Settings:
    """The settings of ``os.environ`` now (rebuilt only when a ``MARGINALIA_*`` variable changed)."""
    global _CACHE
    names = _NAMES or _names()
    key = tuple(os.environ.get(name) for name in names)
    cached = _CACHE
    if cached is not None and cached[0] == key:
        return cached[1]
    settings = Settings.from_env({name: value for name, value in zip(names, key, strict=True) if value is not None})
    _CACHE = (key, settings)
    return settings


_NAMES: tuple[str, ...] = ()


def _names() -> tuple[str, ...]:
    global _NAMES
    _NAMES = tuple(Settings.variables())
    return _NAMES
