"""Fake payment providers over real HTTP, one module per provider, written from each provider's documentation."""
