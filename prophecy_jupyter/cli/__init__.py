"""The `jupyter prophecy` command line."""
