"""Looking inside trained models: heatmaps, FiLM statistics, reports."""
