"""What a program's Apple pass and Google card will look like, for the admin's live preview.

Flask-free. The Apple side is the real ``pass.json`` from
:func:`walletpass.passes.render.render_pass_json` (sample member data, the program's name
and colours), reduced to what the front of the card shows; the template renders it in
HTML/CSS. The Google side follows the loyalty card layout Google Wallet draws from the
class and object.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import segno

from walletpass.passes import render, templates
from walletpass.passes.colours import DEFAULT_COLOURS, hex_to_rgb


@dataclass
class PreviewField:
    label: str
    value: str


@dataclass
class ApplePreview:
    style: str
    background: str
    foreground: str
    label: str
    logo_text: str
    header: list[PreviewField] = field(default_factory=list)
    primary: list[PreviewField] = field(default_factory=list)
    secondary: list[PreviewField] = field(default_factory=list)
    auxiliary: list[PreviewField] = field(default_factory=list)
    barcode_svg: str = ""
    barcode_text: str = ""


@dataclass
class GooglePreview:
    background: str
    text: str
    issuer: str
    title: str
    rows: list[PreviewField] = field(default_factory=list)
    barcode_svg: str = ""


@dataclass
class Preview:
    apple: ApplePreview
    google: GooglePreview
    # Image sources: uploaded files win over the template's own.
    logo_src: str = ""
    strip_src: str = ""
    error: str = ""


def template_defaults(templates_root: Any, name: str) -> dict[str, str]:
    """The template's suggested colours (template.json ``default_colors``)."""
    try:
        template = templates.load_template(templates.template_dir(templates_root, name))
    except templates.TemplateError:
        return dict(DEFAULT_COLOURS)
    colours = dict(DEFAULT_COLOURS)
    colours.update(template.meta.get("default_colors") or {})
    return colours


def sample_variables(
    *, name: str, kind: str, design: Mapping[str, Any], organization: str
) -> dict[str, Any]:
    """SAMPLE_VARIABLES with the program's name, kind, colours and logo text."""
    variables = dict(templates.SAMPLE_VARIABLES)
    colours = {**DEFAULT_COLOURS, **{k: v for k, v in design.items() if isinstance(v, str)}}
    variables.update(
        program_name=name or "Your program",
        program_kind=kind,
        organization_name=organization,
        description=f"{organization} {name}",
        logo_text=design.get("logo_text") or organization,
        background_color=hex_to_rgb(colours["background"]),
        foreground_color=hex_to_rgb(colours["foreground"]),
        label_color=hex_to_rgb(colours["label"]),
        background_hex=colours["background"],
    )
    # Only a tiers program has tiers; a plain points card would show a misleading one.
    if kind != "tiers":
        variables.update(tier="", tier_discount="", next_tier_text="")
    return variables


def _value(raw: Any) -> str:
    text = str(raw)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    return f"{moment.day} {moment:%b %Y}"


def _fields(style: Mapping[str, Any], group: str) -> list[PreviewField]:
    return [
        PreviewField(str(f.get("label", "")), _value(f.get("value", "")))
        for f in style.get(group, [])
    ]


def _qr(message: str, scale: int = 3) -> str:
    # No fixed size: the SVG keeps its viewBox and the stylesheet scales it.
    return str(segno.make(message, error="m").svg_inline(scale=scale, border=0, omitsize=True))


def _luminance(hex_colour: str) -> float:
    value = hex_colour.lstrip("#")
    r, g, b = (int(value[i : i + 2], 16) / 255 for i in (0, 2, 4))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def build(
    templates_root: Any,
    template_name: str,
    variables: Mapping[str, Any],
    *,
    logo_src: str = "",
    strip_src: str = "",
    template_asset_url: str = "",
) -> Preview:
    """The preview of ``template_name`` filled with ``variables``.

    :param template_asset_url: URL prefix of the template's own images
        (``/assets/templates/<name>/``), used when nothing was uploaded.
    """
    background = str(variables.get("background_hex") or DEFAULT_COLOURS["background"])
    google = GooglePreview(
        background=background,
        text="#ffffff" if _luminance(background) < 0.6 else "#1f1f1f",
        issuer=str(variables.get("organization_name", "")),
        title=str(variables.get("program_name", "")),
    )
    try:
        template = templates.load_template(templates.template_dir(templates_root, template_name))
        pass_json = render.render_pass_json(template, variables)
    except templates.TemplateError as exc:
        apple = ApplePreview("storeCard", "#333", "#fff", "#ccc", "")
        return Preview(apple=apple, google=google, error=str(exc))
    style = pass_json[template.style]
    barcode = (pass_json.get("barcodes") or [{}])[0]
    apple = ApplePreview(
        style=template.style,
        background=str(pass_json.get("backgroundColor", "")),
        foreground=str(pass_json.get("foregroundColor", "")),
        label=str(pass_json.get("labelColor", "")),
        logo_text=str(pass_json.get("logoText", "")),
        header=_fields(style, "headerFields"),
        primary=_fields(style, "primaryFields"),
        secondary=_fields(style, "secondaryFields"),
        auxiliary=_fields(style, "auxiliaryFields"),
        barcode_svg=_qr(str(barcode.get("message", ""))) if barcode else "",
        barcode_text=str(barcode.get("altText", "")),
    )
    google.rows = _google_rows(variables)
    google.barcode_svg = apple.barcode_svg
    if not logo_src and template_asset_url and "logo@2x.png" in template.static_files:
        logo_src = template_asset_url + "logo@2x.png"
    if not strip_src:
        strip_src = _template_strip(template, variables, template_asset_url)
    return Preview(apple=apple, google=google, logo_src=logo_src, strip_src=strip_src)


def _template_strip(
    template: templates.PassTemplate, variables: Mapping[str, Any], asset_url: str
) -> str:
    if template.meta.get("dynamic_strip") == "stamps":
        stamps, goal = variables.get("stamps"), variables.get("stamps_goal")
        if stamps is not None and goal:
            # The stamp strip is drawn per count; show the one the sample member would get.
            for name, data, _ in render.stamp_strip_files(template, int(stamps), int(goal)):
                if name == "strip@2x.png":
                    return "data:image/png;base64," + base64.b64encode(data).decode()
    if asset_url and "strip@2x.png" in template.static_files:
        return asset_url + "strip@2x.png"
    return ""


def _google_rows(variables: Mapping[str, Any]) -> list[PreviewField]:
    kind = variables.get("program_kind")
    rows: list[PreviewField] = []
    if variables.get("coupon_title") and kind == "offers":
        rows.append(PreviewField("Offer", str(variables["coupon_title"])))
        rows.append(PreviewField("Discount", str(variables.get("coupon_discount", ""))))
    elif kind == "stamps":
        rows.append(
            PreviewField(
                "Stamps",
                str(variables.get("stamps_text") or "")
                or f"{variables.get('stamps')}/{variables.get('stamps_goal')}",
            )
        )
    elif kind == "membership":
        rows.append(PreviewField("Valid until", _value(variables.get("membership_valid_until"))))
    else:
        rows.append(PreviewField("Points", str(variables.get("points", ""))))
        if variables.get("tier"):
            rows.append(PreviewField("Tier", str(variables["tier"])))
    rows.append(PreviewField("Member", str(variables.get("member_name", ""))))
    return rows
