"""Commands registered on marginalia.cli.app.app (filled in by its owner)."""
