"""One module per CLI command: read -> transform -> write."""
