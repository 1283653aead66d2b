"""Constants shared by the observability tests and their conftest (imported by this unique
module name: ``from conftest import ...`` would pick whichever folder's conftest was loaded last).

Langfuse keeps ONE client per public key per process, so every test uses these same keys.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import marginalia

PUBLIC_KEY = "pk-lf-marginalia-tests"
SECRET_KEY = "sk-lf-" + secrets.token_hex(16)
STANDUP = Path(marginalia.__file__).parent / "samples" / "standup.vtt"
SRC = str(Path(marginalia.__file__).parents[1])
