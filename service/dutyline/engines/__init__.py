"""Engines: pure computation over compiled artefacts (no HTTP, no database)."""
