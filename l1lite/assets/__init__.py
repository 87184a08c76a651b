"""Shipped data files, read with ``importlib.resources``: ``math_small.jsonl`` is the ``l1lite:math-small`` dataset."""
