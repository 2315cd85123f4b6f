"""The trainer service: runs tracked in MLflow, exported to verified ONNX, registered."""
