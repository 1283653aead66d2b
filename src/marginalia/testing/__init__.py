"""Test helpers that are real parts, not mocks.

* :mod:`.s3_server` — :func:`start_test_server` runs moto's S3 on 127.0.0.1 behind a middleware that
  answers the annotation API the way the spec says S3 does (bare moto silently corrupts objects
  instead, spec §19.1). Needs the ``testing`` extra (``pip install 'marginalia[testing]'``);
  without it, using it is one :class:`~marginalia.extras.MissingExtra` line naming the extra.
* :mod:`.chat_models` — scripted chat models for the LLM path; :mod:`.cli` — the CLI in-process;
  :mod:`.fixtures` — where the developers' shared fixtures are. These need only the default install.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TestS3Server", "start_test_server"]


def __getattr__(name: str) -> Any:  # the S3 server only when asked for: it needs the testing extra
    if name in __all__:
        from . import s3_server

        return getattr(s3_server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
