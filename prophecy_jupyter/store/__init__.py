"""Persistent state: teams, fabrics, credentials, attachments, sessions and runs (SQLAlchemy)."""
