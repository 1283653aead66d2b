"""Where the Temporal service is and how to reach it: ``MARGINALIA_TEMPORAL`` and friends.

``MARGINALIA_TEMPORAL=host:port`` turns the Temporal path on (the dev server:
``127.0.0.1:7233``; Temporal Cloud: ``<namespace>.<account>.tmprl.cloud:7233``). The rest
mirrors what :meth:`temporalio.client.Client.connect` takes:

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

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError

__all__ = ["TemporalSettings"]

ENV = "MARGINALIA_TEMPORAL"


def _read_pem(env: Mapping[str, str], name: str) -> bytes | None:
    path = (env.get(name) or "").strip()
    if not path:
        return None
    try:
        return Path(path).read_bytes()
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
        return bool(((os.environ if env is None else env).get(ENV) or "").strip())

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TemporalSettings:
        env = os.environ if env is None else env
        address = (env.get(ENV) or "").strip()
        if not address:
            raise ConfigurationError(
                f"{ENV} is not set: give the Temporal frontend as host:port "
                f"(the dev server: temporal server start-dev --port 7233, then {ENV}=127.0.0.1:7233)"
            )
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigurationError(f"{ENV}={address!r} is not host:port (e.g. 127.0.0.1:7233)")
        try:
            heartbeat = float(env.get("MARGINALIA_TEMPORAL_HEARTBEAT") or 30)
        except ValueError:
            raise ConfigurationError("MARGINALIA_TEMPORAL_HEARTBEAT must be a number of seconds") from None
        if heartbeat <= 0:
            raise ConfigurationError("MARGINALIA_TEMPORAL_HEARTBEAT must be a positive number of seconds")
        ca = _read_pem(env, "MARGINALIA_TEMPORAL_TLS_CA")
        cert = _read_pem(env, "MARGINALIA_TEMPORAL_TLS_CERT")
        key = _read_pem(env, "MARGINALIA_TEMPORAL_TLS_KEY")
        if (cert is None) != (key is None):
            raise ConfigurationError("MARGINALIA_TEMPORAL_TLS_CERT and MARGINALIA_TEMPORAL_TLS_KEY go together (mTLS)")
        api_key = (env.get("MARGINALIA_TEMPORAL_API_KEY") or "").strip() or None
        tls_flag = (env.get("MARGINALIA_TEMPORAL_TLS") or "").strip().lower() in ("1", "true", "yes")
        return cls(
            address=address,
            namespace=(env.get("MARGINALIA_TEMPORAL_NAMESPACE") or "default").strip(),
            task_queue=(env.get("MARGINALIA_TEMPORAL_TASK_QUEUE") or "marginalia").strip(),
            tls=tls_flag or bool(ca or cert or api_key),
            tls_ca=ca,
            tls_cert=cert,
            tls_key=key,
            api_key=api_key,
            heartbeat_s=heartbeat,
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
