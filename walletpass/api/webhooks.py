"""/webhook-endpoints: where outbound events go (delivery itself is walletpass.crm.outbound)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletpass import errors
from walletpass.api.framework import Context, Routes, paginate
from walletpass.api.resources_schemas import (
    PageQuery,
    WebhookDeliveryOut,
    WebhookDeliveryPage,
    WebhookEndpointCreated,
    WebhookEndpointIn,
    WebhookEndpointOut,
    WebhookEndpointPage,
    WebhookEndpointPatch,
)
from walletpass.crm import outbound
from walletpass.crm.models import WebhookDelivery, WebhookEndpoint

SCOPES = ("crm",)
routes = Routes()


def _endpoint(session: Session, endpoint_id: int) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise errors.NotFound(f"no webhook endpoint {endpoint_id}")
    return endpoint


def _out(endpoint: WebhookEndpoint) -> WebhookEndpointOut:
    return WebhookEndpointOut.model_validate(endpoint, from_attributes=True)


def _events(events: list[str]) -> list[str]:
    # A subscription is a set; keep the documented order for a stable answer.
    return sorted(set(events))


@routes.operation(
    "GET",
    "/webhook-endpoints",
    scopes=SCOPES,
    query=PageQuery,
    response=WebhookEndpointPage,
    tag="webhooks",
)
def list_webhook_endpoints(ctx: Context) -> WebhookEndpointPage:
    """List webhook endpoints."""
    rows, cursor = paginate(
        ctx.session,
        select(WebhookEndpoint),
        WebhookEndpoint.id,
        limit=ctx.query.limit,
        cursor=ctx.query.cursor,
    )
    return WebhookEndpointPage(data=[_out(e) for e in rows], next_cursor=cursor)


@routes.operation(
    "POST",
    "/webhook-endpoints",
    scopes=SCOPES,
    body=WebhookEndpointIn,
    response=WebhookEndpointCreated,
    status=201,
    tag="webhooks",
)
def create_webhook_endpoint(ctx: Context) -> WebhookEndpointCreated:
    """Subscribe a URL to events; the signing secret is in this answer only."""
    body: WebhookEndpointIn = ctx.body
    endpoint, secret = outbound.create_endpoint(
        ctx.session,
        ctx.settings,
        merchant_id=ctx.merchant_id,
        url=str(body.url),
        events=list(body.events),
        active=body.active,
        url_field="body.url",
    )
    return WebhookEndpointCreated(**_out(endpoint).model_dump(), secret=secret)


@routes.operation(
    "GET",
    "/webhook-endpoints/<int:endpoint_id>",
    scopes=SCOPES,
    response=WebhookEndpointOut,
    tag="webhooks",
)
def get_webhook_endpoint(ctx: Context) -> WebhookEndpointOut:
    """Get a webhook endpoint (without its secret)."""
    return _out(_endpoint(ctx.session, ctx.path["endpoint_id"]))


@routes.operation(
    "PATCH",
    "/webhook-endpoints/<int:endpoint_id>",
    scopes=SCOPES,
    body=WebhookEndpointPatch,
    response=WebhookEndpointOut,
    tag="webhooks",
)
def update_webhook_endpoint(ctx: Context) -> WebhookEndpointOut:
    """Change the URL, the events or pause it (fields left out or null are unchanged)."""
    endpoint = _endpoint(ctx.session, ctx.path["endpoint_id"])
    body: WebhookEndpointPatch = ctx.body
    if body.url is not None:
        endpoint.url = outbound.check_url(str(body.url), ctx.settings, field="body.url")
    if body.events is not None:
        endpoint.events = _events(body.events)
    if body.active is not None:
        endpoint.active = body.active
    ctx.session.flush()
    return _out(endpoint)


@routes.operation(
    "POST",
    "/webhook-endpoints/<int:endpoint_id>/rotate-secret",
    scopes=SCOPES,
    response=WebhookEndpointCreated,
    tag="webhooks",
)
def rotate_webhook_secret(ctx: Context) -> WebhookEndpointCreated:
    """Replace the signing secret; the new one is in this answer only."""
    endpoint = _endpoint(ctx.session, ctx.path["endpoint_id"])
    secret = outbound.rotate_endpoint_secret(ctx.session, ctx.settings, endpoint)
    return WebhookEndpointCreated(**_out(endpoint).model_dump(), secret=secret)


@routes.operation(
    "DELETE",
    "/webhook-endpoints/<int:endpoint_id>",
    scopes=SCOPES,
    status=204,
    tag="webhooks",
)
def delete_webhook_endpoint(ctx: Context) -> None:
    """Delete an endpoint and its delivery log."""
    ctx.session.delete(_endpoint(ctx.session, ctx.path["endpoint_id"]))
    return None


@routes.operation(
    "GET",
    "/webhook-endpoints/<int:endpoint_id>/deliveries",
    scopes=SCOPES,
    query=PageQuery,
    response=WebhookDeliveryPage,
    tag="webhooks",
)
def list_webhook_deliveries(ctx: Context) -> WebhookDeliveryPage:
    """The endpoint's deliveries, oldest first, with their last status."""
    endpoint = _endpoint(ctx.session, ctx.path["endpoint_id"])
    rows, cursor = paginate(
        ctx.session,
        select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id),
        WebhookDelivery.id,
        limit=ctx.query.limit,
        cursor=ctx.query.cursor,
    )
    return WebhookDeliveryPage(
        data=[WebhookDeliveryOut.model_validate(d, from_attributes=True) for d in rows],
        next_cursor=cursor,
    )


@routes.operation(
    "POST",
    "/webhook-endpoints/<int:endpoint_id>/deliveries/<int:delivery_id>/redeliver",
    scopes=SCOPES,
    response=WebhookDeliveryOut,
    tag="webhooks",
    # ActionNotAllowed: the endpoint is paused (walletpass.crm.outbound.redeliver).
    problems=(errors.ActionNotAllowed,),
)
def redeliver_webhook(ctx: Context) -> WebhookDeliveryOut:
    """Send a delivery again (e.g. a dead one, once the receiver is fixed)."""
    endpoint = _endpoint(ctx.session, ctx.path["endpoint_id"])
    delivery = ctx.session.get(WebhookDelivery, ctx.path["delivery_id"])
    if delivery is None or delivery.endpoint_id != endpoint.id:
        raise errors.NotFound(f"no delivery {ctx.path['delivery_id']} on this endpoint")
    delivery = outbound.redeliver(ctx.session, delivery.id)
    return WebhookDeliveryOut.model_validate(delivery, from_attributes=True)
