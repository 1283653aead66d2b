"""Batch runs over many objects: marginalia batch (registered on marginalia.cli.app.app)."""
