"""The JupyterHub service of a hub deployment: the one process that holds the store and the vault key."""
