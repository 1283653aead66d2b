"""Marginalia: LangGraph agents whose results live on the files they describe, as S3 Annotations."""

__version__ = "0.1.0"
