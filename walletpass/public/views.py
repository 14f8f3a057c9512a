"""Customer pages (placeholder until the customer-pages work lands)."""

from flask import Blueprint

bp = Blueprint("public", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static/public")
