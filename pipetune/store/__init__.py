"""Metrics stores: one interface, one schema (see schema.py)."""
