"""The JSON API under /api/v1: schemas declared once (pydantic), OpenAPI generated from them."""
