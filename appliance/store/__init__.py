"""Persistence: SQLAlchemy models, engines/sessions, Alembic migrations, sync."""
