"""The Jupyter server extension's REST API (handlers described by ``openapi.yaml``)."""
