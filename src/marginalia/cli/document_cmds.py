"""Document agent commands: summarize, outline (registered on marginalia.cli.app.app)."""
