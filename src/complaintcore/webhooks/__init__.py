"""Signed webhooks of the alerts (API.md "Webhooks", DOMAIN.md "Alerts and escalation").

- `urls`: which receiver URLs are allowed (https, or http to an allowed host; no private,
  loopback or link-local address unless allowed), checked at subscription and at each delivery.
- `signing`: the subscription secrets, sealed under a service key, and the signature header.
- `subscriptions`: subscriptions and their deliveries as the routes read and change them.
- `fanout`: new `alerts` rows into `webhook_deliveries` (the outbox), one per matching
  subscription, with the fan-out's checkpoint in the same transaction.
- `dispatcher`: the deliveries sent, in order per case and subscription, at least once.
- `runtime`: the workers as background tasks of an API process, and their lag.
"""
