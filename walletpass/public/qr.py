"""QR codes for flyers, join pages and the landing page (segno: pure Python, SVG and PNG)."""

from __future__ import annotations

import io
from urllib.parse import quote, urlencode

import segno

# "M" survives a folded or slightly smudged flyer; "H" would make codes denser for no gain
# on paper that is printed fresh.
ERROR_LEVEL = "m"
PNG_SCALE = 10
BORDER = 4


def public_link(public_url: str, path: str, **query: str) -> str:
    """An absolute link under the configured public URL (what a phone can reach)."""
    url = public_url.rstrip("/") + quote(path)
    params = {k: v for k, v in query.items() if v}
    return f"{url}?{urlencode(params)}" if params else url


def make(data: str) -> segno.QRCode:
    return segno.make(data, error=ERROR_LEVEL, micro=False)


def svg_bytes(data: str) -> bytes:
    """A standalone SVG; the encoded link is also in <title>, readable by people and tests."""
    out = io.BytesIO()
    make(data).save(out, kind="svg", scale=8, border=BORDER, title=data, svgclass="qr")
    return out.getvalue()


def inline_svg(data: str) -> str:
    """An SVG to inline in an HTML page (no XML declaration, scales with its CSS box)."""
    out = io.BytesIO()
    make(data).save(
        out,
        kind="svg",
        xmldecl=False,
        svgns=True,
        title=data,
        svgclass="qr",
        omitsize=True,
        border=BORDER,
    )
    return out.getvalue().decode("utf-8")


def png_bytes(data: str) -> bytes:
    out = io.BytesIO()
    make(data).save(out, kind="png", scale=PNG_SCALE, border=BORDER)
    return out.getvalue()
