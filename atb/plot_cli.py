"""atb-plot: figures from a workspace (``predictor`` parity plots, ``pareto`` fronts)."""
