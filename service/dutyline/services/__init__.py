"""Use cases (load policy files, import, decide, explain) shared by the CLI, the HTTP API and tests."""
