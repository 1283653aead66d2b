"""Storage: objects and S3 Annotations with the same semantics on AWS (boto3) and on a local bucket."""

from .base import Annotation, AnnotationInfo, AnnotationPage, ObjectInfo, ObjectPage, Store

__all__ = ["Annotation", "AnnotationInfo", "AnnotationPage", "ObjectInfo", "ObjectPage", "Store", "open_store"]


def open_store(spec: str | None = None) -> Store:
    from ..config import open_store as _open

    return _open(spec)
