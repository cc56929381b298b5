"""Lyceum: an AI tutor and learning platform backend."""

__version__ = "0.1.0"
