"""Dutyline: organisation-aware authorization and business rules."""

__version__ = "0.1.0"
