"""The webhook and tracking service's building blocks (issue 7 builds the service on them)."""
