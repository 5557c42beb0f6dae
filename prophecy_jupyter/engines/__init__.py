"""Wire clients, one per engine kind; no Jupyter imports."""
