"""Domain services: fabrics and sessions. No tornado or Jupyter imports."""
