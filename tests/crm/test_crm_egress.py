"""Webhooks reach public addresses and the networks the operator allows, nothing else:
checked when an endpoint is registered (an address in its URL) and again on every
connection (the addresses its name resolves to then)."""

from __future__ import annotations

import socket

import httpcore
import pytest
from sqlalchemy import select
from test_crm_outbound import (  # noqa: F401 (receivers: a fixture)
    drive,
    enroll,
    make_shop,
    publish,
    receivers,
)

from walletpass import egress
from walletpass.crm.models import WebhookDelivery, WebhookEndpoint
from walletpass.egress import Egress
from walletpass.jobs.worker import Worker
from walletpass.runtime import Runtime

PRIVATE = (
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # carrier-grade NAT
    "0.0.0.0",  # noqa: S104 - an address refused, not one bound to
    "224.0.0.1",
    "::1",
    "::ffff:127.0.0.1",
    "fe80::1",
    "fd00::1",
    "not an address",
)


@pytest.mark.parametrize("address", PRIVATE)
def test_private_and_special_addresses_are_refused(address):  # type: ignore[no-untyped-def]
    assert not Egress().allows(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888"])
def test_public_addresses_are_allowed(address):  # type: ignore[no-untyped-def]
    assert Egress().allows(address)


def test_the_setting_allows_networks_and_names_itself_when_wrong():  # type: ignore[no-untyped-def]
    egress = Egress.parse(" 10.0.0.0/8, 192.168.1.7 ,")
    assert egress.allows("10.200.0.1")
    assert egress.allows("192.168.1.7")
    assert not egress.allows("192.168.1.8")
    assert not egress.allows("127.0.0.1")
    with pytest.raises(ValueError, match=r"WALLETPASS_WEBHOOK_ALLOWED_NETWORKS: '10\.0\.0/33'"):
        Egress.parse("10.0.0/33")


def test_registration_refuses_addresses_and_localhost_but_resolves_no_name():  # type: ignore[no-untyped-def]
    egress = Egress()
    for url in (
        "http://127.0.0.1:5432/",
        "https://LOCALHOST./x",
        "http://a.localhost/",
        "http://[::1]/",
    ):
        assert "not a public address" in egress.refusal(url)
    # A name is checked when connecting, against what it resolves to then.
    assert egress.refusal("https://crm.example.test/hook") is None
    assert egress.refusal("https://93.184.215.14/hook") is None
    assert Egress.parse("127.0.0.0/8").refusal("http://localhost:8000/") is None


def test_a_name_that_resolves_to_a_private_address_is_not_connected_to(  # type: ignore[no-untyped-def]
    runtime,
    settings,
    receivers,  # noqa: F811
):
    # Registered where this machine is allowed (the tests' settings), delivered by a
    # worker whose settings allow no private network: as if the name now pointed
    # inside the deployment.
    receiver = receivers([200])
    port = receiver.server.server_address[1]
    receiver_url = f"http://localhost:{port}/hook"
    shop = make_shop(runtime, settings, receiver, events=["member.created"])
    with runtime.transaction() as s:
        s.get(WebhookEndpoint, shop.endpoint_id).url = receiver_url
    enroll(runtime, settings, shop)
    publish(runtime)
    strict = Runtime.create(settings.override(webhook_allowed_networks=""))
    try:
        assert drive(strict, Worker(strict, name="strict", kinds=["webhook.deliver"]), 1) == 1
    finally:
        strict.close()
    assert receiver.received == []
    with runtime.transaction() as s:
        delivery = s.scalars(select(WebhookDelivery)).one()
    assert delivery.status == "pending"
    assert delivery.attempts == 1
    assert "localhost is" in delivery.last_error
    assert "not a public address" in delivery.last_error
    # Where the network is allowed, the same name is delivered to.
    assert drive(runtime, Worker(runtime, name="allowed", kinds=["webhook.deliver"])) == 1
    assert len(receiver.received) == 1
    with runtime.transaction() as s:
        assert s.scalars(select(WebhookDelivery.status)).one() == "delivered"


def test_a_connection_skips_refused_addresses_and_tries_the_next_allowed_one(  # type: ignore[no-untyped-def]
    monkeypatch,
    receivers,  # noqa: F811
):
    receiver = receivers([200])
    port = receiver.server.server_address[1]
    answers = ["10.9.9.9", "127.0.0.2", "127.0.0.1"]  # refused, nothing listening, the receiver
    real = socket.getaddrinfo

    def resolve(host: str, *args, **kw):  # type: ignore[no-untyped-def]
        # The name only: the connect itself resolves the address it is given.
        if host != "crm.example.test":
            return real(host, *args, **kw)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in answers]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    backend = egress._CheckedBackend(Egress.parse("127.0.0.0/8"))
    stream = backend.connect_tcp("crm.example.test", port, timeout=5)
    try:
        assert stream.get_extra_info("server_addr") == ("127.0.0.1", port)
    finally:
        stream.close()
    answers[:] = ["10.9.9.9", "169.254.169.254"]
    with pytest.raises(
        httpcore.ConnectError, match=r"10\.9\.9\.9, 169\.254\.169\.254: not a public"
    ):
        backend.connect_tcp("crm.example.test", port, timeout=5)
