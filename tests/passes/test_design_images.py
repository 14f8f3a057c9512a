"""A merchant's uploaded logo and strip end up in the signed pass (admin uploads)."""

from __future__ import annotations

import io
import zipfile

import factories
from PIL import Image
from pkpass_check import verify_pkpass

from walletpass.loyalty.models import Program


def _png(size: tuple[int, int], colour: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def _program_with_images(runtime, settings, kind: str) -> str:  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        m = factories.merchant(s)
        program = factories.program(s, m, kind)
        folder = settings.home / "designs" / str(program.id)
        folder.mkdir(parents=True)
        images = {}
        for name, size in (
            ("logo.png", (160, 50)),
            ("logo@2x.png", (320, 100)),
            ("strip.png", (375, 144)),
        ):
            (folder / name).write_bytes(_png(size, "#ff6600"))
            images[name] = f"designs/{program.id}/{name}"
        # A path outside the instance is ignored, not served.
        images["logo@3x.png"] = "../../etc/passwd"
        program.design = {**program.design, "images": images}
        member = factories.member(s, s.get(Program, program.id))
        return factories.member_pass(s, settings, member).serial


def test_uploaded_logo_and_strip_replace_the_templates(client, runtime, settings, tmp_path):
    serial = _program_with_images(runtime, settings, "points")
    r = client.get(f"/p/{serial}.pkpass")
    assert r.status_code == 200
    verify_pkpass(r.data, settings.certs_dir / "ca.pem", tmp_path)
    with zipfile.ZipFile(io.BytesIO(r.data)) as z:
        uploaded = sorted((settings.home / "designs").iterdir())[0]
        assert z.read("logo.png") == (uploaded / "logo.png").read_bytes()
        assert z.read("logo@2x.png") == (uploaded / "logo@2x.png").read_bytes()
        assert z.read("strip.png") == (uploaded / "strip.png").read_bytes()
        # The template's own logo@3x stays: the stray path was refused.
        assert Image.open(io.BytesIO(z.read("logo@3x.png"))).size == (480, 150)


def test_stamp_cards_keep_their_drawn_strip(client, runtime, settings, tmp_path):
    serial = _program_with_images(runtime, settings, "stamps")
    r = client.get(f"/p/{serial}.pkpass")
    verify_pkpass(r.data, settings.certs_dir / "ca.pem", tmp_path)
    uploaded = sorted((settings.home / "designs").iterdir())[0]
    with zipfile.ZipFile(io.BytesIO(r.data)) as z:
        assert z.read("logo.png") == (uploaded / "logo.png").read_bytes()
        assert z.read("strip.png") != (uploaded / "strip.png").read_bytes()
