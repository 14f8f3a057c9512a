"""The stamp card's strip image: ``stamps`` filled cups out of ``goal``, drawn with Pillow.

Also holds the drawing primitives that tools/make_template_images.py reuses, so the
committed template art and the strips drawn at run time share one look.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields

from PIL import Image, ImageChops, ImageDraw

# Apple's strip for store cards and coupons: 375x144 pt at 1x, 2x and 3x.
STRIP_PT = (375, 144)
SCALES = {"strip.png": 1, "strip@2x.png": 2, "strip@3x.png": 3}
# Drawn at 3x times this, then downscaled: Pillow's shapes are not anti-aliased.
SUPERSAMPLE = 2
# The left part stays free for the primary field Wallet draws over the strip.
STAMP_AREA_PT = (150.0, 10.0, 365.0, 134.0)
MAX_SLOTS = 30

RGB = tuple[int, int, int]


def hex_rgb(value: str) -> RGB:
    text = value.lstrip("#")
    if len(text) == 3:
        text = "".join(c * 2 for c in text)
    if len(text) != 6:
        raise ValueError(f"not a #rrggbb colour: {value!r}")
    return (int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16))


@dataclass(frozen=True)
class StampPalette:
    """Colours of the stamp strip; template.json's ``stamp_palette`` overrides them."""

    background_top: str = "#2b1a12"
    background_bottom: str = "#5d3a26"
    glow: str = "#8a5a3b"
    stamp: str = "#f4e4c8"
    ink: str = "#3b2418"
    empty: str = "#e9d3b0"
    reward: str = "#d9a35b"

    @classmethod
    def from_mapping(cls, values: Mapping[str, str]) -> StampPalette:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown stamp_palette colours: {sorted(unknown)}")
        return cls(**dict(values))


def diagonal_gradient(size: tuple[int, int], start: RGB, end: RGB) -> Image.Image:
    """RGB image shading from ``start`` (top left) to ``end`` (bottom right)."""
    vertical = Image.linear_gradient("L").resize(size, Image.Resampling.BILINEAR)
    horizontal = vertical.rotate(90, expand=True).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    mask = Image.blend(vertical, horizontal.resize(size, Image.Resampling.BILINEAR), 0.5)
    return Image.composite(Image.new("RGB", size, end), Image.new("RGB", size, start), mask)


def add_glow(
    image: Image.Image, box: tuple[int, int, int, int], colour: RGB, strength: float
) -> None:
    """Soft radial light inside ``box``, blended into ``image`` in place."""
    width, height = box[2] - box[0], box[3] - box[1]
    radial = Image.radial_gradient("L").resize((width, height), Image.Resampling.BILINEAR)
    alpha = radial.point(lambda v: int(max(0, 255 - v * 1.4) * strength))
    layer = Image.new("RGB", (width, height), colour)
    image.paste(layer, box[:2], alpha)


def star_points(cx: float, cy: float, outer: float, inner: float, points: int = 5) -> list:
    out = []
    for i in range(points * 2):
        radius = outer if i % 2 == 0 else inner
        angle = -math.pi / 2 + i * math.pi / points
        out.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    return out


def draw_cup(draw: ImageDraw.ImageDraw, cx: float, cy: float, s: float, colour: RGB) -> None:
    """A steaming coffee cup on a saucer, fitting a box of side ``s`` around (cx, cy)."""
    line = max(1, round(s * 0.06))
    draw.rounded_rectangle(
        (cx - 0.30 * s, cy - 0.10 * s, cx + 0.20 * s, cy + 0.24 * s),
        radius=0.12 * s,
        fill=colour,
        corners=(False, False, True, True),
    )
    draw.ellipse(
        (cx + 0.10 * s, cy - 0.05 * s, cx + 0.36 * s, cy + 0.17 * s), outline=colour, width=line
    )
    draw.rounded_rectangle(
        (cx - 0.40 * s, cy + 0.27 * s, cx + 0.32 * s, cy + 0.33 * s),
        radius=0.03 * s,
        fill=colour,
    )
    for x in (cx - 0.15 * s, cx + 0.03 * s):
        top = cy - 0.42 * s
        draw.arc((x - 0.07 * s, top, x + 0.05 * s, top + 0.14 * s), 90, 270, colour, line)
        draw.arc(
            (x - 0.05 * s, top + 0.13 * s, x + 0.07 * s, top + 0.27 * s), 270, 90, colour, line
        )


def dashed_ring(
    draw: ImageDraw.ImageDraw, box: tuple[float, float, float, float], colour: RGB, width: int
) -> None:
    dashes = 18
    step = 360 / dashes
    for i in range(dashes):
        start = i * step - 90
        draw.arc(box, start, start + step * 0.58, colour, width)


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def _colours(image: Image.Image, limit: int) -> list[tuple[int, ...]] | None:
    """The RGB image's distinct colours, or None when it has more than ``limit``."""
    counted = image.getcolors(limit)
    if counted is None:
        return None
    # Pillow types a colour as a float too, which only a one-band image gives.
    return [colour for _, colour in counted if isinstance(colour, tuple)]


def _palette_of(quantized: Image.Image) -> list[int]:
    palette = quantized.getpalette()
    assert palette is not None  # quantize() always makes a palette image
    return palette


def palette_for(
    image: Image.Image, background: Image.Image, background_colours: int = 128
) -> Image.Image:
    """A 256-colour palette that keeps a smooth background free of banding.

    Median cut over the whole picture spends its colours on the large background and
    drops small accents (the reward star); splitting the palette between the background
    and what is drawn on it keeps both, and a palette PNG is a third of the RGB size.
    """
    exact = _colours(background, background_colours)
    if exact is not None:
        bg_palette = [channel for colour in exact for channel in colour]
    else:
        quantized = background.quantize(background_colours, method=Image.Quantize.MEDIANCUT)
        bg_palette = _palette_of(quantized)[: background_colours * 3]
    room = 256 - len(bg_palette) // 3
    changed = (
        ImageChops.difference(image, background).convert("L").point(lambda v: 255 if v > 2 else 0)
    )
    filler = Image.new("RGB", image.size, (0, 0, 0))
    drawn = _colours(Image.composite(image, filler, changed), 1 << 24) or []
    # One pixel per distinct colour: anti-aliased edges matter as much as flat fills.
    unique = [colour for colour in drawn if colour != (0, 0, 0)] or [(0, 0, 0)]
    sample = Image.frombytes("RGB", (len(unique), 1), bytes(c for rgb in unique for c in rgb))
    colours = min(room, len(unique))
    fg_palette = _palette_of(sample.quantize(colours, method=Image.Quantize.MEDIANCUT))
    palette = Image.new("P", (1, 1))
    palette.putpalette(bg_palette + fg_palette[: colours * 3])
    return palette


def compact_png(image: Image.Image, palette: Image.Image) -> bytes:
    return png_bytes(image.quantize(palette=palette, dither=Image.Dither.NONE))


def slot_layout(goal: int) -> list[tuple[float, float, float]]:
    """(cx, cy, diameter) in points of each of ``goal`` slots inside STAMP_AREA_PT."""
    goal = max(1, min(goal, MAX_SLOTS))
    rows = 1 if goal <= 5 else 2 if goal <= 12 else 3
    cols = math.ceil(goal / rows)
    left, top, right, bottom = STAMP_AREA_PT
    cell = min((right - left) / cols, (bottom - top) / rows)
    grid_w, grid_h = cell * cols, cell * rows
    x0 = right - grid_w
    y0 = top + ((bottom - top) - grid_h) / 2
    slots = []
    for i in range(goal):
        row, col = divmod(i, cols)
        # Centre a short last row under the others.
        in_row = min(cols, goal - row * cols)
        shift = (cols - in_row) * cell / 2
        slots.append((x0 + shift + (col + 0.5) * cell, y0 + (row + 0.5) * cell, cell * 0.84))
    return slots


def draw_stamp_strip_3x(
    stamps: int, goal: int, palette: StampPalette
) -> tuple[Image.Image, Image.Image]:
    """The 3x strip (1125x432 px) with ``stamps`` of ``goal`` slots filled, and its bare
    background (for :func:`palette_for`)."""
    k = 3 * SUPERSAMPLE
    size = (STRIP_PT[0] * k, STRIP_PT[1] * k)
    background = diagonal_gradient(
        size, hex_rgb(palette.background_top), hex_rgb(palette.background_bottom)
    )
    image = background.copy()
    draw = ImageDraw.Draw(image)
    stamp, ink = hex_rgb(palette.stamp), hex_rgb(palette.ink)
    empty, reward = hex_rgb(palette.empty), hex_rgb(palette.reward)
    slots = slot_layout(goal)
    filled = max(0, min(stamps, len(slots)))
    for index, (cx_pt, cy_pt, d_pt) in enumerate(slots):
        cx, cy, r = cx_pt * k, cy_pt * k, d_pt * k / 2
        box = (cx - r, cy - r, cx + r, cy + r)
        is_reward = index == len(slots) - 1
        if index < filled:
            draw.ellipse(box, fill=reward if is_reward else stamp)
            if is_reward:
                draw.polygon(star_points(cx, cy, r * 0.62, r * 0.26), fill=stamp)
            else:
                draw_cup(draw, cx + r * 0.04, cy + r * 0.08, r * 1.5, ink)
        else:
            dashed_ring(draw, box, reward if is_reward else empty, max(2, round(r * 0.09)))
            if is_reward:
                draw.polygon(star_points(cx, cy, r * 0.5, r * 0.21), outline=reward, width=k)
    final = (STRIP_PT[0] * 3, STRIP_PT[1] * 3)
    return (
        image.resize(final, Image.Resampling.LANCZOS),
        background.resize(final, Image.Resampling.LANCZOS),
    )


def render_stamp_strip(stamps: int, goal: int, palette: StampPalette) -> dict[str, bytes]:
    """PNG bytes of strip.png, strip@2x.png and strip@3x.png."""
    big, background = draw_stamp_strip_3x(stamps, goal, palette)
    colours = palette_for(big, background)
    out = {}
    for name, scale in SCALES.items():
        size = (STRIP_PT[0] * scale, STRIP_PT[1] * scale)
        image = big if scale == 3 else big.resize(size, Image.Resampling.LANCZOS)
        out[name] = compact_png(image, colours)
    return out
