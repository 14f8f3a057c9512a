"""CRM integration: signed inbound and outbound webhooks."""
