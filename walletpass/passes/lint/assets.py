"""Checks of a pass's images and ``*.lproj/pass.strings`` files.

Image slots and their sizes in points follow Apple's "Building a pass" / Wallet
developer guide layout tables (icon 29x29, logo at most 160x50, strip 375 wide by 144
for store cards and coupons, 123 for other styles and 98 for event tickets, thumbnail
90x90, background 180x220); the pixel size is points x scale (@2x, @3x).
"""

from __future__ import annotations

import codecs
import functools
import re
import struct
from collections.abc import Mapping

from walletpass.passes.lint.findings import Finding, Report

_PNG = b"\x89PNG\r\n\x1a\n"
_IMAGE = re.compile(r"(?:(?P<dir>[^/]+\.lproj)/)?(?P<slot>[A-Za-z]+)(?:@(?P<scale>[23])x)?\.png")
_SLOTS = {
    "icon": (29, 29),
    "logo": (160, 50),
    "thumbnail": (90, 90),
    "background": (180, 220),
    "footer": (286, 15),
}
_STRIP = {"storeCard": (375, 144), "coupon": (375, 144), "eventTicket": (375, 98)}
_STRIP_OTHER = (375, 123)


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR, or None when ``data`` is not a PNG."""
    if len(data) < 24 or not data.startswith(_PNG) or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def check_images(report: Report, files: Mapping[str, bytes], style: str | None) -> None:
    """Add image problems; ``files`` maps bundle paths to bytes, ``style`` the pass style."""
    sizes: dict[tuple[str | None, str], dict[int, tuple[int, int]]] = {}
    for name, data in files.items():
        match = _IMAGE.fullmatch(name)
        if match is None:
            continue
        slot = match["slot"]
        limit = _STRIP.get(style or "", _STRIP_OTHER) if slot == "strip" else _SLOTS.get(slot)
        if style == "posterGeneric" and slot == "background":
            limit = None  # the poster's artwork fills the pass face: no small slot
        if limit is None:
            continue  # personalizationLogo, artwork keys of newer styles: not checked
        size = png_size(data)
        if size is None:
            report.error(
                "image-invalid", name, f"{name} is not a PNG image; Wallet shows none there."
            )
            continue
        scale = int(match["scale"] or 1)
        sizes.setdefault((match["dir"], slot), {})[scale] = size
        biggest = (limit[0] * scale, limit[1] * scale)
        if size[0] > biggest[0] or size[1] > biggest[1]:
            report.warning(
                "image-too-large",
                name,
                f"{name} is {size[0]}x{size[1]} px; the {slot} slot is at most "
                f"{limit[0]}x{limit[1]} points, so {biggest[0]}x{biggest[1]} px at @{scale}x. "
                "Wallet scales or crops it.",
            )
    _check_scales(report, sizes)
    if not any(n in files for n in ("icon.png", "icon@2x.png", "icon@3x.png")):
        report.error(
            "icon-missing",
            "icon.png",
            "The pass has no icon (icon.png, @2x, @3x); Wallet refuses a pass without one.",
        )
    elif not all(n in files for n in ("icon.png", "icon@2x.png", "icon@3x.png")):
        report.warning(
            "icon-scale-missing",
            "icon.png",
            "Ship icon.png, icon@2x.png and icon@3x.png: with a resolution missing a pass can "
            "open on a Mac yet fail on an iPhone.",
        )


def _check_scales(
    report: Report, sizes: Mapping[tuple[str | None, str], Mapping[int, tuple[int, int]]]
) -> None:
    for (folder, slot), by_scale in sizes.items():
        base = by_scale.get(1)
        if base is None:
            continue
        for scale, size in by_scale.items():
            want = (base[0] * scale, base[1] * scale)
            if scale != 1 and size != want:
                name = f"{folder + '/' if folder else ''}{slot}@{scale}x.png"
                report.warning(
                    "image-scale-mismatch",
                    name,
                    f"{name} is {size[0]}x{size[1]} px but {slot}.png is {base[0]}x{base[1]}; "
                    f"the @{scale}x image should be exactly {want[0]}x{want[1]}.",
                )


# One "key" = "value"; entry; comments are /* */ or //.
_ENTRY = re.compile(r'\s*"(?:[^"\\]|\\.)*"\s*=\s*"(?:[^"\\]|\\.)*"\s*;')
_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)


def check_strings(report: Report, files: Mapping[str, bytes]) -> None:
    """Add problems of every ``<lang>.lproj/pass.strings``: encoding and syntax."""
    for name, data in files.items():
        if name.endswith(".lproj/pass.strings"):
            report.findings.extend(_strings_findings(name, data))


@functools.lru_cache(maxsize=256)
def _strings_findings(name: str, data: bytes) -> tuple[Finding, ...]:
    # The same templates' strings come in every pass: checked once per content.
    report = Report()
    text = _decode(data)
    if text is None:
        report.error(
            "strings-encoding",
            name,
            f"{name} is neither UTF-8 nor UTF-16; Wallet cannot read it and shows the "
            "untranslated keys. Save it as UTF-8.",
        )
        return tuple(report.findings)
    rest = _COMMENT.sub("", text)
    pos = 0
    while True:
        match = _ENTRY.match(rest, pos)
        if match is None:
            break
        pos = match.end()
    if rest[pos:].strip():
        line = text[: text.find(rest[pos:].strip()[:20])].count("\n") + 1
        report.error(
            "strings-syntax",
            name,
            f'{name} cannot be parsed near line {line}: each entry must be "key" = "value"; '
            "(quotes escaped with a backslash). Wallet ignores the whole file.",
        )
    return tuple(report.findings)


def _decode(data: bytes) -> str | None:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        encoding = "utf-8-sig"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return None
