"""The one version string of the package (pyproject.toml and the labextension say the same)."""

__version__ = "0.1.0"
