"""The gateway service: the public gRPC API: predictions, feedback, auth and routing."""
