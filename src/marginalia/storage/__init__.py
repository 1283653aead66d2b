"""Storage: objects and S3 Annotations with the same semantics on AWS (boto3) and on a local bucket."""

from .base import Annotation, AnnotationInfo, AnnotationPage, ObjectInfo, ObjectPage, Store

__all__ = ["Annotation", "AnnotationInfo", "AnnotationPage", "ObjectInfo", "ObjectPage", "Store", "open_store"]


def open_store(spec: str) -> Store:
    """The :class:`Store` named by ``spec``: ``local:<dir>`` (a directory that behaves like a
    bucket), ``s3`` (boto3) or ``s3:<endpoint-url>``. :func:`marginalia.config.open_store` fills in
    ``MARGINALIA_STORE`` when no spec is given."""
    from ..errors import ConfigurationError

    if spec.startswith("local:"):
        from pathlib import Path

        from .local import LocalStore

        return LocalStore(Path(spec[len("local:") :] or ".marginalia"))
    if spec == "s3" or spec.startswith("s3:"):
        from .s3 import S3Store

        endpoint = spec[3:] or None if spec.startswith("s3:") else None
        return S3Store(endpoint_url=endpoint)
    raise ConfigurationError(f"MARGINALIA_STORE={spec!r} is not understood: use 'local:<dir>' or 's3'")
