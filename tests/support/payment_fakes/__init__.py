"""Fake payment providers over real HTTP, each written from its provider's documentation."""
