"""A real SMTP server for the card-email tests (aiosmtpd on 127.0.0.1, a free port): it
keeps every message it accepts, and answers the next commands with scripted replies
("451 ..." for a temporary refusal, "550 ..." for a permanent one) when told to.

Import the fixtures by name (a conftest.py here would shadow tests/conftest.py)."""

from __future__ import annotations

import socket
import ssl
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import factories
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import update

from walletpass.db import utcnow
from walletpass.jobs.models import Job, JobStatus

MAIL_FROM = "walletpass cards <cards@wallet.example.test>"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    # Whether the session had switched to TLS (STARTTLS) and who logged in.
    tls: bool
    login: str | None

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        assert isinstance(part, EmailMessage)
        return str(part.get_content())

    @property
    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        assert isinstance(part, EmailMessage)
        return str(part.get_content())

    @property
    def images(self) -> list[EmailMessage]:
        return [p for p in self.message.walk() if p.get_content_maintype() == "image"]  # type: ignore[misc]


class _Handler:
    def __init__(self, catcher: SmtpCatcher) -> None:
        self.catcher = catcher

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        with self.catcher.lock:
            if self.catcher.rcpt_replies:
                return self.catcher.rcpt_replies.popleft()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.catcher.lock:
            if self.catcher.data_replies:
                return self.catcher.data_replies.popleft()
            raw = envelope.original_content or envelope.content
            message = BytesParser(policy=policy.default).parsebytes(raw)
            assert isinstance(message, EmailMessage)
            data = session.auth_data if session.authenticated else None
            login = data.login.decode() if isinstance(data, LoginPassword) else None
            self.catcher.received.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    message,
                    # After STARTTLS (session.ssl), or TLS from the start (smtps).
                    tls=session.ssl is not None
                    or server.transport.get_extra_info("ssl_object") is not None,
                    login=login,
                )
            )
        return "250 2.0.0 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SmtpCatcher:
    """aiosmtpd in a thread; ``url`` is what WALLETPASS_SMTP_URL would be."""

    def __init__(
        self,
        *,
        tls_context: ssl.SSLContext | None = None,
        implicit_tls: ssl.SSLContext | None = None,
        logins: dict[str, str] | None = None,
    ) -> None:
        """``tls_context``: STARTTLS required; ``implicit_tls``: TLS from the first byte."""
        self.port = free_port()
        self.received: list[Received] = []
        self.rcpt_replies: deque[str] = deque()
        self.data_replies: deque[str] = deque()
        self.lock = threading.Lock()
        self.logins = logins
        self.kwargs: dict[str, Any] = {}
        if tls_context is not None:
            self.kwargs.update(tls_context=tls_context, require_starttls=True)
        if logins is not None:
            self.kwargs.update(auth_required=True, authenticator=self._authenticate)
        self.implicit_tls = implicit_tls
        self.controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and self.logins is not None
            and self.logins.get(auth_data.login.decode()) == auth_data.password.decode()
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    def start(self) -> None:
        """Listen (again, after :meth:`stop`: a server that comes back on its port)."""
        self.controller = Controller(
            _Handler(self),
            hostname="127.0.0.1",
            port=self.port,
            ssl_context=self.implicit_tls,
            **self.kwargs,
        )
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp_server() -> Iterator[SmtpCatcher]:
    catcher = SmtpCatcher()
    catcher.start()
    yield catcher
    catcher.stop()


def make_due(runtime: Any) -> None:
    """Every pending job due now (skips the outbox's backoff in a test)."""
    with runtime.transaction() as s:
        s.execute(
            update(Job)
            .where(Job.status == JobStatus.PENDING)
            .values(run_at=utcnow())
            .execution_options(synchronize_session=False)
        )


def greek_member(runtime: Any, settings: Any, **member_kw: Any) -> dict[str, Any]:
    """A Greek café's member who reads Greek, with a card."""
    with runtime.transaction() as s:
        merchant = factories.merchant(s, name="Καφέ Ήλιος", language="el", currency="EUR")
        program = factories.program(s, merchant, "stamps", name="Κάρτα καφέ")
        member = factories.member(
            s,
            program,
            name=member_kw.pop("name", "Ελένη"),
            email=member_kw.pop("email", "eleni@example.test"),
            language=member_kw.pop("language", "el"),
            **member_kw,
        )
        card = factories.member_pass(s, settings, member)
        return {
            "merchant_id": merchant.id,
            "program_id": program.id,
            "member_id": member.id,
            "serial": card.serial,
            "code": card.barcode,
        }
