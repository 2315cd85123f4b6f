"""The inference service: ONNX models over the KServe v2 / Triton gRPC protocol."""
