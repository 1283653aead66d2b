"""Where the developers' shared fixtures are, when they are there at all.

Real meetings, PDFs and outline requests live in ``../shared/fixtures`` beside the checkout on
developers' machines and in CI, never on a user's machine and never in the repository (some are
licensed for non-commercial use only). Tests and benchmarks that use them ask here and skip when
the answer is None.
"""

from __future__ import annotations

from pathlib import Path

from ..settings import current

_REPO = Path(__file__).resolve().parents[3]


def shared_fixtures() -> Path | None:
    """``$MARGINALIA_SHARED_FIXTURES``, else ``../shared/fixtures`` beside the checkout, else None."""
    candidates = [current().shared_fixtures, _REPO.parent / "shared" / "fixtures"]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


#: The shared fixtures directory, or a path that does not exist (so ``.exists()``/globs skip).
SHARED_FIXTURES = shared_fixtures() or _REPO.parent / "shared" / "fixtures"
