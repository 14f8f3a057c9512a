"""The till page (placeholder until the till work lands)."""

from flask import Blueprint

bp = Blueprint("till", __name__, url_prefix="/till", template_folder="templates",
               static_folder="static", static_url_path="/static/till")
