"""The catalogue of public domain events: what other systems may subscribe to."""
