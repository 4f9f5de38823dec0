"""Persistence: SQLAlchemy tables, migrations and repositories. Knows nothing of engines or HTTP."""
