"""Microbenchmarks and end-to-end comparisons: ``python -m fastdl.bench [suite ...]``.

Each suite is a module here with ``run(opts) -> list[Table]``; the runner
prints markdown tables and can write JSON. Speed lives here, never in tests.
"""
