"""The organisation model as a document: its format, loading with line numbers, and validation."""
