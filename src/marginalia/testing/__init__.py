"""Test helpers that are real parts, not mocks: an S3 server that implements S3 Annotations.

:func:`start_test_server` runs moto's S3 on 127.0.0.1 behind a middleware that answers the
annotation API the way the spec says S3 does (bare moto silently corrupts objects instead,
spec §19.1). Needs the ``dev`` extra (``moto[server]``); importing this package without it
fails with a clear :class:`~marginalia.errors.ConfigurationError` only when a server is started.
"""

from __future__ import annotations

from .s3_server import TestS3Server, start_test_server

__all__ = ["TestS3Server", "start_test_server"]
