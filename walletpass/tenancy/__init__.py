"""Merchants (tenants), their stores, staff users and API keys."""
