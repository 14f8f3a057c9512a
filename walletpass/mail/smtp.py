"""Hand one message to the configured SMTP server (stdlib smtplib), and say how it went.

A failure is either temporary (a 4xx reply, a server that cannot be reached or hangs up,
a login the operator has to fix): the message is tried again later; or permanent (a 5xx
reply to the message or its recipient): no retry can deliver it. The password is only
ever given to ``login()``; no message here carries it.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr

from walletpass.config import SmtpServer

# Seconds for the connection and each reply: a hung server holds one worker this long.
TIMEOUT_S = 30.0


class SmtpError(Exception):
    """The server did not take the message; ``permanent`` says whether a retry can help."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


def send(server: SmtpServer, message: EmailMessage, *, timeout: float = TIMEOUT_S) -> str:
    """Send ``message`` (From and To taken from its headers); returns the recipient.

    :raise SmtpError: refused or not reachable.
    """
    sender = parseaddr(str(message["From"]))[1]
    recipients = [address for _name, address in getaddresses([str(message["To"])]) if address]
    if not recipients:
        raise SmtpError("the message has no recipient address", permanent=True)
    try:
        conn = _connect(server, timeout)
        try:
            if server.username:
                conn.login(server.username, server.password)
            # Every recipient refused raises; some refused (we send to one) cannot happen.
            conn.send_message(message, from_addr=sender, to_addrs=recipients)
        finally:
            _close(conn)
    except smtplib.SMTPRecipientsRefused as exc:
        code, reply = next(iter(exc.recipients.values()))
        raise _reply_error("refused the recipient", code, reply) from None
    except smtplib.SMTPAuthenticationError as exc:
        # The account or password is wrong: the operator fixes WALLETPASS_SMTP_URL and the
        # emails waiting go out then, rather than being dropped.
        raise SmtpError(
            f"{server.describe()} refused the login ({exc.smtp_code}: {_text(exc.smtp_error)})",
            permanent=False,
        ) from None
    except smtplib.SMTPResponseException as exc:
        raise _reply_error("refused the message", exc.smtp_code, exc.smtp_error) from None
    except smtplib.SMTPNotSupportedError as exc:
        # STARTTLS or AUTH asked of a server without them: wait for the operator.
        raise SmtpError(f"{server.describe()}: {exc}", permanent=False) from None
    except (smtplib.SMTPException, OSError) as exc:  # refused, reset, timed out, TLS failed
        raise SmtpError(
            f"could not reach {server.describe()}: {type(exc).__name__}: {exc}", permanent=False
        ) from None
    return recipients[0]


def _connect(server: SmtpServer, timeout: float) -> smtplib.SMTP:
    context = ssl.create_default_context()
    if server.security == "tls":
        return smtplib.SMTP_SSL(server.host, server.port, timeout=timeout, context=context)
    conn = smtplib.SMTP(server.host, server.port, timeout=timeout)
    if server.security == "starttls":
        try:
            conn.starttls(context=context)
        except BaseException:
            conn.close()
            raise
    return conn


def _close(conn: smtplib.SMTP) -> None:
    # Not ``with SMTP(...)``: its exit raises when QUIT is not answered 221, and a message
    # the server has accepted would then count as failed, and be sent again.
    try:
        conn.quit()
    except (smtplib.SMTPException, OSError):
        conn.close()


def _reply_error(what: str, code: int, reply: bytes | str) -> SmtpError:
    # 5xx: the server will answer the same every time (no such mailbox, message refused);
    # 4xx (greylisting, a full queue, "try again later") and anything odd: later.
    return SmtpError(f"the SMTP server {what}: {code} {_text(reply)}", permanent=500 <= code < 600)


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())[:300]
