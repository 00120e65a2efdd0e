"""scan's benchmarks: `python bench/run.py [--quick] [--json]` (see bench/run.py)."""
