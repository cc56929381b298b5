"""Fake payment providers over real HTTP on loopback ports, each written from its
provider's API documentation (not from Lyceum's adapters): the endpoints Lyceum calls,
checked the way the provider checks them, and webhooks signed exactly as the provider
signs them, so the adapters are tested against the provider's contract."""
