"""Where the Temporal service is and how to reach it: ``MARGINALIA_TEMPORAL`` and friends.

``MARGINALIA_TEMPORAL=host:port`` turns the Temporal path on (the dev server:
``127.0.0.1:7233``; Temporal Cloud: ``<namespace>.<account>.tmprl.cloud:7233``). The rest
mirrors what :meth:`temporalio.client.Client.connect` takes (declared, with their defaults and
checks, in :mod:`marginalia.settings`):

| variable | meaning | default |
|---|---|---|
| ``MARGINALIA_TEMPORAL_NAMESPACE`` | namespace | ``default`` |
| ``MARGINALIA_TEMPORAL_TASK_QUEUE`` | task queue workers poll and runs are sent to | ``marginalia`` |
| ``MARGINALIA_TEMPORAL_TLS`` | ``1`` for TLS with the system roots (implied by the files below) | off |
| ``MARGINALIA_TEMPORAL_TLS_CA`` / ``_TLS_CERT`` / ``_TLS_KEY`` | PEM files: server CA, client cert and key (mTLS) | none |
| ``MARGINALIA_TEMPORAL_API_KEY`` | API key (Temporal Cloud); implies TLS | none |
| ``MARGINALIA_TEMPORAL_HEARTBEAT`` | seconds without a heartbeat before a run's worker counts as dead | ``30`` |

No secret is ever printed: :meth:`TemporalSettings.describe` names the address and namespace only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from ..settings import Settings, current

__all__ = ["TemporalSettings"]

ENV = "MARGINALIA_TEMPORAL"


def _read_pem(name: str, path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"{name}={path}: cannot read the PEM file ({exc.strerror})") from None


@dataclass(frozen=True)
class TemporalSettings:
    address: str
    namespace: str = "default"
    task_queue: str = "marginalia"
    tls: bool = False
    tls_ca: bytes | None = None
    tls_cert: bytes | None = None
    tls_key: bytes | None = None
    api_key: str | None = None
    heartbeat_s: float = 30.0

    @staticmethod
    def configured(env: Mapping[str, str] | None = None) -> bool:
        """True when ``MARGINALIA_TEMPORAL`` is set (the only check the local path ever pays)."""
        return (current() if env is None else Settings.from_env(env)).temporal is not None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TemporalSettings:
        """From the ``MARGINALIA_TEMPORAL*`` settings (:mod:`marginalia.settings` checks their values;
        this reads the PEM files they name)."""
        settings = current() if env is None else Settings.from_env(env)
        if settings.temporal is None:
            raise ConfigurationError(
                f"{ENV} is not set: give the Temporal frontend as host:port "
                f"(the dev server: temporal server start-dev --port 7233, then {ENV}=127.0.0.1:7233)"
            )
        ca = _read_pem("MARGINALIA_TEMPORAL_TLS_CA", settings.temporal_tls_ca)
        cert = _read_pem("MARGINALIA_TEMPORAL_TLS_CERT", settings.temporal_tls_cert)
        key = _read_pem("MARGINALIA_TEMPORAL_TLS_KEY", settings.temporal_tls_key)
        if (cert is None) != (key is None):
            raise ConfigurationError("MARGINALIA_TEMPORAL_TLS_CERT and MARGINALIA_TEMPORAL_TLS_KEY go together (mTLS)")
        api_key = settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
        return cls(
            address=settings.temporal,
            namespace=settings.temporal_namespace,
            task_queue=settings.temporal_task_queue,
            tls=settings.temporal_tls or bool(ca or cert or api_key),
            tls_ca=ca,
            tls_cert=cert,
            tls_key=key,
            api_key=api_key,
            heartbeat_s=settings.temporal_heartbeat,
        )

    def describe(self) -> str:
        return f"{self.address} (namespace {self.namespace}, task queue {self.task_queue}{', TLS' if self.tls else ''})"

    def tls_config(self) -> Any:
        if not self.tls:
            return False
        from temporalio.service import TLSConfig

        if not (self.tls_ca or self.tls_cert):
            return True
        return TLSConfig(server_root_ca_cert=self.tls_ca, client_cert=self.tls_cert, client_private_key=self.tls_key)

    async def connect(self) -> Any:
        """A :class:`temporalio.client.Client` (ConfigurationError naming the address if unreachable)."""
        from temporalio.client import Client

        try:
            return await Client.connect(
                self.address, namespace=self.namespace, tls=self.tls_config(), api_key=self.api_key
            )
        except RuntimeError as exc:  # the SDK's connection failure
            raise ConfigurationError(f"cannot reach Temporal at {self.describe()}: {exc}") from None
