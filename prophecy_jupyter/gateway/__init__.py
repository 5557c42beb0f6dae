"""A Livy-compatible REST server running sessions on local PySpark (the embedded fabric)."""
