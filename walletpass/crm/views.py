"""Inbound CRM webhooks (placeholder until the CRM work lands)."""

from flask import Blueprint

bp = Blueprint("crm", __name__)
