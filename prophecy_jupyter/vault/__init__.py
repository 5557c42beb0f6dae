"""Encryption at rest: the vault key and the per-user secret store."""
