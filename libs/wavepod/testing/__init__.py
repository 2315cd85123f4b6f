"""Real backing servers for tests (PostgreSQL, ...), started and stopped by the test."""
