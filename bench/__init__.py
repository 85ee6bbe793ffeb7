"""atb's benchmarks: scripts that print measured figures side by side and assert nothing.
Each runs from the repository root as ``python -m bench.<name>``; what they share lives in
:mod:`bench.common`."""
