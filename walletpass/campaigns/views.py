"""Campaign pages in the admin (placeholder until the campaigns work lands)."""

from flask import Blueprint

bp = Blueprint(
    "campaigns",
    __name__,
    url_prefix="/admin/campaigns",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static/campaigns",
)
