"""Adapters that deliver alerts to people: email over SMTP, webhooks and chat robots."""
