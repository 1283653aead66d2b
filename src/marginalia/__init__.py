"""Marginalia: LangGraph agents whose results live on the files they describe, as S3 Annotations.

The public API (imported lazily so ``import marginalia`` and the CLI start fast)::

    marginalia.minutes(uri, ...) / marginalia.aminutes(...)   -> RunResult
    marginalia.resume(thread_id, action=...) / marginalia.aresume(...)
    marginalia.summarize(uri, ...) / marginalia.asummarize(...)  -> RunResult
    marginalia.outline(request, out=..., ...) / marginalia.aoutline(...)
"""

from .version import __version__

_API = {"minutes", "aminutes", "resume", "aresume", "RunResult", "WrittenAnnotation"}
_DOCUMENT_API = {"summarize", "asummarize", "outline", "aoutline"}

__all__ = ["__version__", *sorted(_API | _DOCUMENT_API)]


def __getattr__(name: str):
    if name in _API:
        from . import api

        return getattr(api, name)
    if name in _DOCUMENT_API:
        from . import api_documents

        return getattr(api_documents, name)
    raise AttributeError(f"module 'marginalia' has no attribute {name!r}")
