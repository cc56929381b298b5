"""How a channel adapter tells the delivery job what to do with a failed send.

Every outgoing channel (mail, SMS, Web Push, FCM, webhooks) raises one of these:

- `PermanentDeliveryError`: retrying cannot help (an invalid number, a subscription the
  push service says is gone, a hard bounce, a URL that is refused). The delivery is
  recorded as failed and the job ends without a retry.
- `TransientDeliveryError`: the provider is down, slow or rate-limiting; the job fails
  and its queue's retry policy (exponential backoff with jitter) runs it again.

Any other exception counts as transient.
"""

from __future__ import annotations


class DeliveryError(Exception):
    """A send that did not go through; `reason` is short and safe to show an admin."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason[:500]


class PermanentDeliveryError(DeliveryError):
    """Retrying cannot help: record the failure and stop."""


class TransientDeliveryError(DeliveryError):
    """Try again later, on the queue's backoff schedule."""


__all__ = ["DeliveryError", "PermanentDeliveryError", "TransientDeliveryError"]
