"""Tests of paid courses: orders, checkout, the payment providers, webhooks, refunds."""
