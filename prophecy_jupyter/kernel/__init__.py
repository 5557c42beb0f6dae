"""The "Prophecy" bridge kernel: every cell runs on the notebook's fabric."""
