"""Attacks by a member of the same deployment: each test is one attack, and must fail without its fix."""
