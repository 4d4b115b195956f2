"""Training, evaluation and inference on cached datasets."""
