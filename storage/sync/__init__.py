"""Sync's storage."""
