"""Design images for a program: uploaded logo and strip, resized to Apple's sizes. Flask-free.

Wallet shows a logo inside 160x50 points and a store-card strip at 375x144 points; each
is shipped at 1x, 2x and 3x so that it is sharp on every screen. The files live under
``<home>/designs/<program id>/`` and their home-relative paths are recorded in
``Program.design["images"]`` as ``{"logo.png": "designs/7/logo.png", ...}``.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

MAX_BYTES = 5 * 1024 * 1024
# A JPEG is decoded at a reduced scale (libjpeg's draft mode: 1/2, 1/4 or 1/8), never
# larger than Wallet can use, so a 48-megapixel phone photo costs what a small one does;
# its header may name up to this many pixels.
MAX_PIXELS = 50_000_000
# PNG, GIF and WebP decode whole: 8 megapixels (e.g. 4000x2000) is 32 MB as RGBA and well
# under a second, far beyond what a pass shows (the strip at 3x is 1125x432). A 6300x6300
# PNG of 37 KB decoded to 237 MB in 4 s in a web worker before.
MAX_WHOLE_PIXELS = 8_000_000
ACCEPTED_FORMATS = {"PNG", "JPEG", "GIF", "WEBP"}
SCALES = (1, 2, 3)
# (width, height) in points; "fit" keeps the whole logo inside the box, "fill" crops the
# strip to cover it exactly (Wallet stretches a strip of the wrong shape).
KINDS: dict[str, tuple[tuple[int, int], str]] = {
    "logo": ((160, 50), "fit"),
    "strip": ((375, 144), "fill"),
}


class DesignImageError(ValueError):
    """An upload that cannot be used; the message is shown to the marketer."""


def file_names(kind: str) -> list[str]:
    return [f"{kind}.png" if s == 1 else f"{kind}@{s}x.png" for s in SCALES]


def _open(data: bytes, largest: tuple[int, int]) -> Image.Image:
    """The upload decoded, no larger than needed to make ``largest`` (the 3x size) well.

    :raise DesignImageError: not an image, not an accepted format, too big.
    """
    if len(data) > MAX_BYTES:
        raise DesignImageError(
            f"The image is {len(data) / 1024 / 1024:.1f} MB; the limit is "
            f"{MAX_BYTES / 1024 / 1024:g} MB."
        )
    if not data:
        raise DesignImageError("The file is empty.")
    try:
        with warnings.catch_warnings():
            # Pillow warns before it refuses; both mean "too big" here.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(io.BytesIO(data))
            if image.format not in ACCEPTED_FORMATS:
                raise DesignImageError(
                    f"{image.format or 'This'} images are not accepted; upload a PNG, JPEG, "
                    "GIF or WebP."
                )
            pixels = image.width * image.height
            limit = MAX_PIXELS if image.format == "JPEG" else MAX_WHOLE_PIXELS
            if pixels > limit:
                raise DesignImageError(
                    f"The image has {pixels / 1e6:.1f} megapixels; the limit for "
                    f"{image.format} is {limit / 1e6:g}. Resize it first."
                )
            if image.format == "JPEG":
                # Twice the largest size a pass shows: enough for a sharp LANCZOS resize.
                image.draft("RGB", (2 * largest[0], 2 * largest[1]))
            image.load()
    except DesignImageError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DesignImageError(
            "This file is not an image (upload a PNG, JPEG, GIF or WebP)."
        ) from exc
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise DesignImageError("The image has too many pixels; resize it first.") from exc
    # Phone photos carry their rotation in EXIF; apply it so the strip is not sideways
    # (first: a reduced copy carries no EXIF).
    image = ImageOps.exif_transpose(image)
    # No more than twice the largest size on each side goes on to the resizes (a box
    # filter by a whole factor is cheap): the three LANCZOS passes and the RGBA copy then
    # cost what a small upload's do.
    factor = min(image.width // (2 * largest[0]), image.height // (2 * largest[1]))
    if factor >= 2:
        image = image.reduce(factor)
    return image.convert("RGBA")


def resize(kind: str, data: bytes) -> dict[str, bytes]:
    """PNG bytes of ``kind`` ("logo" or "strip") at 1x/2x/3x, keyed by Wallet file name.

    :raise DesignImageError: not an image, not an accepted format, or over 5 MB.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown design image kind {kind!r}")
    (width, height), mode = KINDS[kind]
    image = _open(data, (width * SCALES[-1], height * SCALES[-1]))
    out: dict[str, bytes] = {}
    for name, scale in zip(file_names(kind), SCALES, strict=True):
        box = (width * scale, height * scale)
        if mode == "fill":
            sized = ImageOps.fit(image, box, method=Image.Resampling.LANCZOS)
        else:
            ratio = min(box[0] / image.width, box[1] / image.height)
            size = (max(1, round(image.width * ratio)), max(1, round(image.height * ratio)))
            sized = image.resize(size, Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        sized.save(buf, format="PNG", optimize=True)
        out[name] = buf.getvalue()
    return out


def store(home: Path, program_id: int, kind: str, data: bytes) -> dict[str, str]:
    """Resize and write ``kind``'s files for a program; returns {file name: home-relative path}.

    :raise DesignImageError: see :func:`resize`; nothing is written then.
    """
    files = resize(kind, data)
    folder = home / "designs" / str(int(program_id))
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, str] = {}
    for name, content in files.items():
        target = folder / name
        # Write then rename: a pass being signed meanwhile never reads half a file.
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(content)
        tmp.replace(target)
        paths[name] = target.relative_to(home).as_posix()
    return paths


def image_path(home: Path, program_id: int, name: str) -> Path | None:
    """The stored file ``name`` of a program, or None (names outside Wallet's are refused)."""
    allowed = {n for kind in KINDS for n in file_names(kind)}
    if name not in allowed:
        return None
    path = home / "designs" / str(int(program_id)) / name
    return path if path.is_file() else None
