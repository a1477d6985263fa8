"""The benchmark suite: ``python -m bench.run`` (``make bench``) prints one JSON line per figure."""
