"""Evaluation metrics. Each module sees only the model contract."""
