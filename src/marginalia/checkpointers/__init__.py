"""LangGraph checkpointers that keep threads in a bucket: :class:`S3Saver` (S3 or the local bucket)."""

from .s3 import S3Saver

__all__ = ["S3Saver"]
