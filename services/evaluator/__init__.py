"""The evaluator service: promotion gates, online metrics from feedback, drift and reports."""
