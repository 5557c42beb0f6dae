"""Side-by-side benchmarks of our client against sparkmagic's Livy client (``make bench``)."""
