"""The model library: pure PyTorch (no Ray, no MLflow), every model trained here from scratch."""
