"""Imports every table module so that Base.metadata knows the whole schema."""

from . import models_admin, models_alerts, models_policies, models_remote, models_state, models_sync  # noqa: F401
from .models import Base

__all__ = ["Base"]
