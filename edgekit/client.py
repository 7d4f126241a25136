"""Placeholder: the HTTP client lands in the next commit."""
