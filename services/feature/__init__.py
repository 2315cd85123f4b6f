"""The feature service: versioned feature sets, point-in-time training sets and the online store."""
