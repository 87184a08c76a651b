"""Evaluation: accuracy and length against thinking budgets (``l1lite eval``). Imports the core and inference.

- ``engine``: the eval run: config checks, the plan, per-sample seeds, generation, metrics, ``summary.json``.
- ``results``: the resumable ``results.jsonl`` and the keys of its rows.
- ``report``: ``report.md`` and plots of one run or several (``l1lite eval compare``).
- ``cli``: ``l1lite eval``.
"""
