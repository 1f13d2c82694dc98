"""Owns the admin tables (see the issue that builds them); core tables live in models.py."""

from __future__ import annotations

from .models import Base  # noqa: F401
