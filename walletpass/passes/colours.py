"""A card's colours when its program sets none, and the CSS form pass.json wants them in."""

from __future__ import annotations

DEFAULT_COLOURS = {"background": "#1f3b4d", "foreground": "#ffffff", "label": "#cfe3ee"}


def hex_to_rgb(value: str) -> str:
    value = value.lstrip("#")
    if len(value) == 3:
        value = "".join(ch * 2 for ch in value)
    r, g, b = (int(value[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgb({r}, {g}, {b})"
