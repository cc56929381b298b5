"""Outgoing webhooks: endpoints admins register, signed deliveries of public events
(Standard Webhooks), retries, the delivery log."""
