"""Benchmarks: measure Mailwire's speed against real processes and print figures.

`python -m benchmarks` runs every benchmark in `registry.py`; each prints one
`name value unit` line per figure on stdout (notes go to stderr). Benchmarks
print figures and ratios and never assert: a slow run is information, not a
failure. Modules here may import `mailwire.testing` (to launch servers) and
httpx; product code never imports this package.
"""
