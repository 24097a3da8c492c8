"""One module per CLI command (discovered by rsviz.cli)."""
