"""Draw the committed images of the pass templates in walletpass/pass_templates/.

Run once, by hand, when a design changes: ``.venv/bin/python tools/make_template_images.py``.
The PNGs are committed; the service never runs this. Everything is drawn at 3x times a
supersampling factor and downscaled, because Pillow's shapes are not anti-aliased.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from walletpass.passes.stamp_strip import (  # noqa: E402
    StampPalette,
    compact_png,
    dashed_ring,
    diagonal_gradient,
    draw_cup,
    hex_rgb,
    palette_for,
    png_bytes,
    render_stamp_strip,
    star_points,
)

TEMPLATES = ROOT / "walletpass" / "pass_templates"
SS = 4
ICON_PT = (29, 29)
LOGO_PT = (160, 50)
STRIP_PT = (375, 144)
SCALES = ((1, ""), (2, "@2x"), (3, "@3x"))

# Pillow's draw callbacks get the canvas size in px; they return (picture, background or None).
Drawer = Callable[[int, int], tuple[Image.Image, Image.Image | None]]


def save_scales(folder: Path, stem: str, size_pt: tuple[int, int], drawer: Drawer) -> None:
    width, height = size_pt[0] * 3 * SS, size_pt[1] * 3 * SS
    image, background = drawer(width, height)
    for scale, suffix in SCALES:
        size = (size_pt[0] * scale, size_pt[1] * scale)
        small = image.resize(size, Image.Resampling.LANCZOS)
        if background is None:
            data = png_bytes(small)
        else:
            bg = background.resize(size, Image.Resampling.LANCZOS)
            data = compact_png(small, palette_for(small, bg))
        (folder / f"{stem}{suffix}.png").write_bytes(data)


def transparent(width: int, height: int, colour: tuple[int, int, int]) -> Image.Image:
    # Transparent pixels carry the motif colour, so downscaled edges do not fringe dark.
    return Image.new("RGBA", (width, height), (*colour, 0))


def rounded_square(width: int, height: int, top: str, bottom: str) -> Image.Image:
    """An opaque icon background: Wallet and iOS apply their own corner mask."""
    return diagonal_gradient((width, height), hex_rgb(top), hex_rgb(bottom))


# Motifs. Coordinates are canvas px; ``s`` is the side of the box the motif fills.


def draw_percent(draw: ImageDraw.ImageDraw, cx: float, cy: float, s: float, colour) -> None:
    ring = s * 0.13
    width = max(1, round(s * 0.07))
    for x, y in ((cx - s * 0.22, cy - s * 0.22), (cx + s * 0.22, cy + s * 0.22)):
        draw.ellipse((x - ring, y - ring, x + ring, y + ring), outline=colour, width=width)
    x0, y0, x1, y1 = cx + s * 0.26, cy - s * 0.38, cx - s * 0.26, cy + s * 0.38
    draw.line((x0, y0, x1, y1), fill=colour, width=max(1, round(s * 0.11)))


def draw_tiers(draw: ImageDraw.ImageDraw, x: float, y: float, w: float, h: float) -> None:
    """Three ascending podium bars, bronze to gold, with a star over the gold one."""
    colours = ("#b87333", "#c9d1dc", "#e8c15a")
    bar_w = w / 3.6
    gap = (w - 3 * bar_w) / 2
    for i, colour in enumerate(colours):
        top = y + h * (0.62 - 0.2 * i)
        left = x + i * (bar_w + gap)
        draw.rounded_rectangle(
            (left, top, left + bar_w, y + h),
            radius=bar_w * 0.18,
            fill=hex_rgb(colour),
            corners=(True, True, False, False),
        )
    star_x = x + 2 * (bar_w + gap) + bar_w / 2
    star_r = bar_w * 0.5
    draw.polygon(
        star_points(star_x, y + h * 0.22 - star_r * 0.2, star_r, star_r * 0.42),
        fill=hex_rgb("#fff3c4"),
    )


def draw_rosette(
    draw: ImageDraw.ImageDraw, cx: float, cy: float, r: float, outer, inner, ribbon
) -> None:
    """A membership badge: scalloped medal on two ribbon tails, a star in the middle."""
    for side in (-1, 1):
        draw.polygon(
            [
                (cx + side * r * 0.15, cy + r * 0.3),
                (cx + side * r * 0.62, cy + r * 0.55),
                (cx + side * r * 0.55, cy + r * 1.42),
                (cx + side * r * 0.34, cy + r * 1.2),
                (cx + side * r * 0.1, cy + r * 1.35),
            ],
            fill=ribbon,
        )
    lobes = 16
    for i in range(lobes):
        angle = 2 * math.pi * i / lobes
        lx, ly = cx + r * 0.8 * math.cos(angle), cy + r * 0.8 * math.sin(angle)
        draw.ellipse((lx - r * 0.22, ly - r * 0.22, lx + r * 0.22, ly + r * 0.22), fill=outer)
    draw.ellipse((cx - r * 0.84, cy - r * 0.84, cx + r * 0.84, cy + r * 0.84), fill=outer)
    draw.ellipse(
        (cx - r * 0.66, cy - r * 0.66, cx + r * 0.66, cy + r * 0.66),
        outline=inner,
        width=max(1, round(r * 0.07)),
    )
    draw.polygon(star_points(cx, cy, r * 0.46, r * 0.19), fill=inner)


def ticket_layer(width: int, height: int, paper, ink) -> Image.Image:
    """A coupon ticket with punched side notches, a perforation and a percent sign."""
    layer = Image.new("RGBA", (width, height), (*paper, 0))
    mask = Image.new("L", (width, height), 0)
    mdraw = ImageDraw.Draw(mask)
    mdraw.rounded_rectangle((0, 0, width - 1, height - 1), radius=height * 0.12, fill=255)
    notch = height * 0.16
    for x in (0, width):
        mdraw.ellipse((x - notch, height / 2 - notch, x + notch, height / 2 + notch), fill=0)
    layer.paste(Image.new("RGBA", (width, height), (*paper, 255)), (0, 0), mask)
    draw = ImageDraw.Draw(layer)
    perf_x = width * 0.68
    dash = height / 17
    for i in range(1, 16, 2):
        draw.ellipse(
            (perf_x - dash * 0.35, i * dash, perf_x + dash * 0.35, i * dash + dash * 0.7),
            fill=(*paper, 0),
        )
    draw_percent(draw, width * 0.35, height / 2, height * 0.7, (*ink, 255))
    draw.polygon(
        star_points(width * 0.82, height / 2, height * 0.13, height * 0.055), fill=(*ink, 255)
    )
    return layer


# Templates.


def stamp_card(folder: Path) -> None:
    espresso, cream = "#3b2418", hex_rgb("#f4e4c8")

    def icon(w: int, h: int):
        image = rounded_square(w, h, "#5d3a26", espresso)
        draw_cup(ImageDraw.Draw(image), w * 0.5, h * 0.56, w * 0.9, cream)
        return image, None

    def logo(w: int, h: int):
        image = transparent(w, h, cream)
        draw = ImageDraw.Draw(image)
        r = h * 0.46
        draw.ellipse((h / 2 - r, h / 2 - r, h / 2 + r, h / 2 + r), fill=(*cream, 255))
        draw_cup(draw, h * 0.5, h * 0.55, h * 0.72, (*hex_rgb(espresso), 255))
        return image, None

    save_scales(folder, "icon", ICON_PT, icon)
    save_scales(folder, "logo", LOGO_PT, logo)
    # The static strip is the empty card; passes with a member get one drawn for their count.
    for name, data in render_stamp_strip(0, 10, StampPalette()).items():
        (folder / name).write_bytes(data)


def points_tiers(folder: Path) -> None:
    navy, indigo, gold = "#141b33", "#3a3370", hex_rgb("#e8c15a")

    def icon(w: int, h: int):
        image = rounded_square(w, h, indigo, navy)
        ImageDraw.Draw(image).polygon(star_points(w / 2, h * 0.53, w * 0.4, w * 0.17), fill=gold)
        return image, None

    def logo(w: int, h: int):
        image = transparent(w, h, gold)
        draw = ImageDraw.Draw(image)
        r = h * 0.44
        draw.ellipse(
            (h / 2 - r, h / 2 - r, h / 2 + r, h / 2 + r),
            outline=(*gold, 255),
            width=round(h * 0.07),
        )
        draw.polygon(star_points(h / 2, h * 0.52, r * 0.72, r * 0.3), fill=(*gold, 255))
        return image, None

    def strip(w: int, h: int):
        background = diagonal_gradient((w, h), hex_rgb(navy), hex_rgb(indigo))
        image = background.copy()
        draw = ImageDraw.Draw(image)
        k = w / STRIP_PT[0]
        # Faint sparkles across the strip: a loyalty "status" feel without busy detail.
        for sx, sy, sr in ((190, 30, 4), (232, 112, 3), (350, 22, 3), (214, 64, 2), (168, 100, 2)):
            draw.polygon(
                star_points(sx * k, sy * k, sr * k, sr * k * 0.35, 4), fill=hex_rgb("#8f86c9")
            )
        draw_tiers(draw, 262 * k, 24 * k, 96 * k, 108 * k)
        draw.rounded_rectangle(
            (250 * k, 131 * k, 370 * k, 135 * k), radius=2 * k, fill=hex_rgb("#5d55a0")
        )
        return image, background

    save_scales(folder, "icon", ICON_PT, icon)
    save_scales(folder, "logo", LOGO_PT, logo)
    save_scales(folder, "strip", STRIP_PT, strip)


def membership(folder: Path) -> None:
    forest, teal = "#163a34", "#2e6f62"
    gold, green, red = hex_rgb("#e3c77d"), hex_rgb("#1f4e46"), hex_rgb("#b4493f")

    def icon(w: int, h: int):
        image = rounded_square(w, h, teal, forest)
        draw_rosette(ImageDraw.Draw(image), w / 2, h * 0.38, w * 0.32, gold, green, red)
        return image, None

    def logo(w: int, h: int):
        image = transparent(w, h, gold)
        draw_rosette(
            ImageDraw.Draw(image),
            h / 2,
            h * 0.36,
            h * 0.3,
            (*gold, 255),
            (*hex_rgb(teal), 255),
            (*red, 255),
        )
        return image, None

    def strip(w: int, h: int):
        background = diagonal_gradient((w, h), hex_rgb(forest), hex_rgb(teal))
        image = background.copy()
        draw = ImageDraw.Draw(image)
        k = w / STRIP_PT[0]
        for i, radius in enumerate((58, 47, 36)):
            dashed_ring(
                draw,
                (
                    305 * k - radius * k,
                    62 * k - radius * k,
                    305 * k + radius * k,
                    62 * k + radius * k,
                ),
                hex_rgb(("#3f8273", "#4a8f80", "#579c8c")[i]),
                max(1, round(1.5 * k)),
            )
        draw_rosette(draw, 305 * k, 56 * k, 36 * k, gold, green, red)
        return image, background

    save_scales(folder, "icon", ICON_PT, icon)
    save_scales(folder, "logo", LOGO_PT, logo)
    save_scales(folder, "strip", STRIP_PT, strip)


def coupon(folder: Path) -> None:
    coral, amber = "#c2410c", "#f59e0b"
    paper, ink = hex_rgb("#fff7ed"), hex_rgb("#c2410c")

    def icon(w: int, h: int):
        image = rounded_square(w, h, amber, coral)
        draw_percent(ImageDraw.Draw(image), w / 2, h / 2, w * 0.78, paper)
        return image, None

    def logo(w: int, h: int):
        image = transparent(w, h, paper)
        ticket = ticket_layer(round(h * 1.5), round(h * 0.8), paper, ink)
        image.alpha_composite(ticket, (0, round(h * 0.1)))
        return image, None

    def strip(w: int, h: int):
        background = diagonal_gradient((w, h), hex_rgb(coral), hex_rgb(amber))
        image = background.copy()
        k = w / STRIP_PT[0]
        ticket = ticket_layer(round(150 * k), round(78 * k), paper, ink)
        ticket = ticket.rotate(-8, resample=Image.Resampling.BICUBIC, expand=True)
        shadow = Image.new("RGBA", ticket.size, (60, 20, 0, 0))
        shadow.putalpha(ticket.getchannel("A").point(lambda v: v * 45 // 255))
        base = image.convert("RGBA")
        base.alpha_composite(shadow, (round(212 * k), round(38 * k)))
        base.alpha_composite(ticket, (round(208 * k), round(32 * k)))
        return base.convert("RGB"), background

    save_scales(folder, "icon", ICON_PT, icon)
    save_scales(folder, "logo", LOGO_PT, logo)
    save_scales(folder, "strip", STRIP_PT, strip)


def main() -> None:
    for make in (stamp_card, points_tiers, membership, coupon):
        folder = TEMPLATES / make.__name__
        folder.mkdir(parents=True, exist_ok=True)
        make(folder)
        sizes = {p.name: p.stat().st_size for p in sorted(folder.glob("*.png"))}
        print(folder.name, sizes)


if __name__ == "__main__":
    main()
