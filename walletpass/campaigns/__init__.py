"""Campaigns: an offer or message, an audience, a schedule, and their results."""
