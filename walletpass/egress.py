"""Where outbound webhooks may connect: public addresses, and the networks the operator
allows (``WALLETPASS_WEBHOOK_ALLOWED_NETWORKS``).

A webhook URL is chosen by a merchant, or by whoever holds an admin key, and the worker
POSTs to it from inside the deployment. Unchecked, ``http://127.0.0.1:5432/`` or a cloud
metadata address (169.254.169.254) would be reachable through it (server-side request
forgery). The check runs when a connection is made, on the addresses the name resolves to
then, and the connection goes to an address that passed: a DNS answer that changes
between a check and the connect (rebinding) cannot get past it.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

SETTING = "WALLETPASS_WEBHOOK_ALLOWED_NETWORKS"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Egress:
    """Public unicast addresses, plus ``allowed`` (an on-premises CRM, the tests' local
    receivers)."""

    allowed: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Egress:
        """From the setting: networks in CIDR form (or single addresses), comma-separated.

        :raise ValueError: a part that is not a network, named with the setting.
        """
        networks = []
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            try:
                networks.append(ipaddress.ip_network(part, strict=False))
            except ValueError as exc:
                raise ValueError(f"{SETTING}: {part!r} is not a network ({exc})") from None
        return cls(tuple(networks))

    def allows(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
        if any(ip in network for network in self.allowed):
            return True
        return ip.is_global and not ip.is_multicast

    def refusal(self, url: str) -> str | None:
        """Why ``url`` can never be delivered to, when its host is an address (or
        ``localhost``) this policy refuses; None otherwise. Names are resolved only when
        connecting: an endpoint registered today may resolve elsewhere tomorrow."""
        host = (urlsplit(url).hostname or "").rstrip(".").lower()
        if host == "localhost" or host.endswith(".localhost"):
            address = "127.0.0.1"
        else:
            try:
                address = str(ipaddress.ip_address(host))
            except ValueError:
                return None
        if self.allows(address):
            return None
        return f"{host} is not a public address ({SETTING} can allow a private network)"


class _CheckedBackend(httpcore.SyncBackend):
    """Resolves the host itself and connects only to an address the policy allows."""

    def __init__(self, egress: Egress) -> None:
        self.egress = egress

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
        usable = [a for a in addresses if self.egress.allows(a)]
        if not usable:
            raise httpcore.ConnectError(
                f"{host} is {', '.join(addresses)}: not a public address "
                f"({SETTING} can allow a private network)"
            )
        error: httpcore.ConnectError | None = None
        for address in usable:
            try:
                # TLS still verifies the certificate for ``host``: httpcore passes the
                # URL's host name as the server name, not the address connected to.
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc
        assert error is not None
        raise error


def transport(egress: Egress) -> httpx.HTTPTransport:
    """An httpx transport that connects only where ``egress`` allows. No proxy from the
    environment: a proxy would make the connection the check is about."""
    checked = httpx.HTTPTransport(trust_env=False)
    limits = httpx.Limits()
    # httpx takes no network backend of its own, so its pool is replaced by one that
    # has the checked backend, with httpx's defaults otherwise.
    checked._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=_CheckedBackend(egress),
    )
    return checked
