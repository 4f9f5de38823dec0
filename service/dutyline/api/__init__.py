"""HTTP: thin Litestar controllers over the services."""
