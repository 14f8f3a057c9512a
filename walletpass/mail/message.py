"""The card email: subject, a text part and an HTML part with the card's QR code inline.

Composed with the stdlib ``email`` package::

    multipart/alternative
      text/plain            the texts, and the link
      multipart/related
        text/html           the same texts, a button, <img src="cid:...">
        image/png           the QR code of the link

Every text is the member's language's (``text(lang)``, catalogue area ``mail``), its
variables (names, the link) substituted after translation and escaped in the HTML.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

import segno
from jinja2 import Environment, PackageLoader, select_autoescape

from walletpass.i18n.catalogues import text

# Like the public pages' QR codes (walletpass/public/qr.py): "M" survives a screenshot
# or a print; 6 px a module is sharp on a phone and about 200 px wide for a card link.
QR_ERROR = "m"
QR_SCALE = 6
QR_BORDER = 4

_html = Environment(
    loader=PackageLoader("walletpass.mail", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class CardEmailContent:
    """What one card email says, read from the database before it is composed."""

    language: str
    merchant_name: str
    program_name: str
    member_name: str
    recipient: str
    card_url: str
    welcome: bool
    message_id: str  # "<...@domain>", fixed when the email was asked for
    sender: str  # WALLETPASS_MAIL_FROM


def compose(content: CardEmailContent, *, now: datetime) -> EmailMessage:
    """The message, ready for smtplib; From shows the merchant's name at the sender's
    address, so a customer sees who writes (one installation serves many shops)."""
    texts = _texts(content)
    message = EmailMessage()
    message["Subject"] = _one_line(texts["subject"])
    message["From"] = Address(
        _one_line(content.merchant_name), addr_spec=parseaddr(content.sender)[1]
    )
    # A ValueError here: an address no header can carry (a non-ASCII local part).
    message["To"] = Address(_one_line(content.member_name), addr_spec=content.recipient)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = content.message_id
    # RFC 3834: sent by a program, so out-of-office replies are not sent back to it.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(_plain(texts, content.card_url))
    qr_cid = qr_content_id(content.message_id)
    html = _html.get_template("mail/card.html").render(
        lang=content.language, texts=texts, card_url=content.card_url, qr_cid=qr_cid[1:-1]
    )
    message.add_alternative(html, subtype="html")
    html_part = next(p for p in message.iter_parts() if p.get_content_type() == "text/html")
    html_part.add_related(
        qr_png(content.card_url), "image", "png", cid=qr_cid, filename="card-qr.png"
    )
    # Last: set_content() and add_alternative() move Content-* headers into the parts.
    message["Content-Language"] = content.language
    return message


def _one_line(value: str) -> str:
    """A name for a header: line breaks and other control characters (from a CRM's
    import, say) as spaces, which the email package would refuse."""
    return " ".join("".join(" " if ch < " " or ch == "\x7f" else ch for ch in value).split())


def qr_content_id(message_id: str) -> str:
    """``<qr.abc@host>`` for the Message-ID ``<abc@host>``: the image's Content-ID, as
    stable as the message's."""
    return "<qr." + message_id.strip("<>") + ">"


def qr_png(data: str) -> bytes:
    out = io.BytesIO()
    segno.make(data, error=QR_ERROR, micro=False).save(
        out, kind="png", scale=QR_SCALE, border=QR_BORDER
    )
    return out.getvalue()


def _texts(content: CardEmailContent) -> dict[str, str]:
    t = text(content.language)
    program, merchant = content.program_name, content.merchant_name
    return {
        "subject": t.gettext("Your %(merchant)s card", merchant=merchant),
        "greeting": t.gettext("Hello %(name)s,", name=content.member_name)
        if content.member_name.strip()
        else t.gettext("Hello,"),
        "intro": t.gettext("Welcome to %(program)s! Your card is ready.", program=program)
        if content.welcome
        else t.gettext("Here is your %(program)s card, as you asked.", program=program),
        "how": t.gettext(
            "Open the link on your phone to add the card to Apple Wallet or Google Wallet, "
            "or to show it at the counter:"
        ),
        "button": t.gettext("Open my card"),
        "scan": t.gettext("Or scan this code with your phone's camera:"),
        "qr_alt": t.gettext("QR code of the link to your card"),
        "keep": t.gettext("Keep this email: the link opens your card whenever you need it."),
        "footer": t.gettext(
            "%(merchant)s sent you this email because you joined %(program)s.",
            merchant=merchant,
            program=program,
        ),
    }


def _plain(texts: dict[str, str], card_url: str) -> str:
    return (
        f"{texts['greeting']}\n\n{texts['intro']}\n\n{texts['how']}\n{card_url}\n\n"
        f"{texts['keep']}\n\n-- \n{texts['footer']}\n"
    )
