"""The search attributes a Marginalia run carries, so Temporal's visibility can find it.

``temporal workflow list --query "MarginaliaAgent='minutes' AND ExecutionStatus='Failed'"`` and
``marginalia threads`` both read these. A dev server gets them with ``--search-attribute``
flags (:data:`DEV_SERVER_FLAGS`); a real cluster once, with
``temporal operator search-attribute create --name MarginaliaAgent --type Keyword`` (and the
same for the others; Temporal Cloud: in the namespace's settings).
"""

from __future__ import annotations

from ..extras import requires
from ..uri import parse_uri

with requires("temporal", "running on Temporal (marginalia worker, --on temporal)"):
    from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

__all__ = ["AGENT", "BUCKET", "DEV_SERVER_FLAGS", "OBJECT_KEY", "STATUS", "for_run"]

AGENT = SearchAttributeKey.for_keyword("MarginaliaAgent")
BUCKET = SearchAttributeKey.for_keyword("MarginaliaBucket")
OBJECT_KEY = SearchAttributeKey.for_keyword("MarginaliaObjectKey")
#: running | waiting | done | rejected | expired | failed (the thread's status, as the index says it)
STATUS = SearchAttributeKey.for_keyword("MarginaliaStatus")

ALL = (AGENT, BUCKET, OBJECT_KEY, STATUS)
DEV_SERVER_FLAGS: tuple[str, ...] = tuple(f"--search-attribute={key.name}=Keyword" for key in ALL)


def for_run(agent: str, object_uri: str, status: str = "running") -> TypedSearchAttributes:
    """The attributes a run starts with (its status is upserted by the workflow as it changes)."""
    uri = parse_uri(object_uri)
    return TypedSearchAttributes(
        [
            SearchAttributePair(AGENT, agent),
            SearchAttributePair(BUCKET, uri.bucket),
            SearchAttributePair(OBJECT_KEY, uri.key),
            SearchAttributePair(STATUS, status),
        ]
    )
