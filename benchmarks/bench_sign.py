"""Pass signing throughput: walletpass vs wallet-py3k vs the bare RSA-2048 limit.

Every walletpass and wallet-py3k iteration makes a *fresh* pass (new serial and points)
from the points_tiers template with its images, hashes the manifest, signs and zips it,
with the same dev certificate. Prints one JSON line:

    .venv/bin/python benchmarks/bench_sign.py [--seconds 3]

With ``--against REV`` it compares walletpass/passes/signing.py as it is at git revision
REV with the working tree's instead (wallet-py3k left out): the cost of one signature and
of one whole pass build with each, measured in the same run, interleaved:

    .venv/bin/python benchmarks/bench_sign.py --against HEAD~1
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO))

from at_revision import module_at  # noqa: E402

from walletpass.certs.dev import create_dev_chain  # noqa: E402
from walletpass.cli.passes import static_variables  # noqa: E402
from walletpass.config import Settings  # noqa: E402
from walletpass.passes import render, templates  # noqa: E402
from walletpass.passes.pkpass import build_pkpass  # noqa: E402
from walletpass.passes.signing import SigningIdentity  # noqa: E402
from walletpass.resources import PASS_TEMPLATES_DIR  # noqa: E402

TEMPLATE = PASS_TEMPLATES_DIR / "points_tiers"


def cpu_clock() -> float:
    """CPU seconds used by this process and its finished children (wallet-py3k's openssl).

    CPU time rather than wall time: the numbers are per-core costs, and other processes on
    a shared machine do not move them (or the ratios) the way they move wall time.
    """
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def rates(
    fns: dict[str, Callable[[int], Any]],
    seconds: float,
    rounds: int,
    clock: Callable[[], float],
) -> dict[str, float]:
    """Calls per second of each ``fn(i)``, ``seconds`` each in total.

    The measurements are interleaved in ``rounds`` slices (A B C A B C ...) so that
    whatever else happens on the machine hits all of them alike and the ratios stay fair.
    """
    counts = dict.fromkeys(fns, 0)
    spent = dict.fromkeys(fns, 0.0)
    for fn in fns.values():
        fn(-1)  # warm-up: caches, imports, the first openssl start
    for _ in range(rounds):
        for name, fn in fns.items():
            start = clock()
            deadline = start + seconds / rounds
            n = counts[name]
            while True:
                fn(n)
                n += 1
                now = clock()
                if now >= deadline:
                    break
            counts[name] = n
            spent[name] += now - start
    return {name: counts[name] / spent[name] for name in fns}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    parser.add_argument("--rounds", type=int, default=30, help="interleaved slices")
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="cpu: CPU seconds of this process and its children (robust on a busy machine)",
    )
    parser.add_argument("--template", type=Path, default=TEMPLATE, help="template folder")
    parser.add_argument(
        "--against",
        metavar="REV",
        help="compare signing.py at git revision REV with the working tree's (no wallet-py3k)",
    )
    args = parser.parse_args(argv)
    clock = cpu_clock if args.clock == "cpu" else time.perf_counter
    load_before = os.getloadavg()

    settings = Settings()
    with tempfile.TemporaryDirectory() as tmp:
        certs = Path(tmp)
        create_dev_chain(certs, settings.pass_type_id, settings.team_id)
        identity = SigningIdentity.from_dir(certs, None)
        template = templates.load_template(args.template)

        def variables(i: int) -> dict[str, Any]:
            return static_variables(
                settings,
                f"BENCH-{i:08d}",
                identity.pass_type_id,
                identity.team_id,
                {"points": 1000 + i, "member_name": "Bench Member"},
            )

        def pass_builder(signer: Any) -> Callable[[int], bytes]:
            def once(i: int) -> bytes:
                v = variables(i)
                pass_json = render.render_pass_json(template, v)
                files, file_hashes = render.bundle_files(template, v)
                return build_pkpass(
                    render.dumps_pass_json(pass_json), files, file_hashes, signer
                ).zip_bytes

            return once

        manifest_like = b'{"icon.png":"' + b"0" * 40 + b'"}' * 10

        def rsa_once(_: int) -> bytes:
            return identity.key.sign(manifest_like, padding.PKCS1v15(), hashes.SHA256())

        if args.against:
            result = _side_by_side(
                args.against, identity, pass_builder, rsa_once, args.seconds, args.rounds, clock
            )
        else:
            measured = rates(
                {
                    "walletpass": pass_builder(identity),
                    "wallet_py3k": _wallet_py3k_runner(certs, template, variables),
                    "rsa": rsa_once,
                },
                args.seconds,
                max(1, args.rounds),
                clock,
            )
            walletpass_rate = measured["walletpass"]
            wallet_rate = measured["wallet_py3k"]
            rsa_rate = measured["rsa"]
            result = {
                "walletpass_passes_per_s": round(walletpass_rate, 1),
                "wallet_py3k_passes_per_s": round(wallet_rate, 1),
                "rsa2048_signs_per_s": round(rsa_rate, 1),
                "ratio_vs_wallet_py3k": round(walletpass_rate / wallet_rate, 2),
                "fraction_of_rsa_limit": round(walletpass_rate / rsa_rate, 3),
            }

    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    result |= {
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "seconds_per_measurement": args.seconds,
        "clock": args.clock,
        "template": template.name,
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
    }
    print(json.dumps(result))
    return 0


def _side_by_side(
    rev: str,
    identity: SigningIdentity,
    pass_builder: Callable[[Any], Callable[[int], bytes]],
    rsa_once: Callable[[int], bytes],
    seconds: float,
    rounds: int,
    clock: Callable[[], float],
) -> dict[str, Any]:
    """µs per signature and per pass build with signing.py at ``rev`` and as it is now."""
    old_signing = module_at(rev, "walletpass/passes/signing.py")
    old = old_signing.SigningIdentity(identity.cert, identity.key, identity.intermediate)
    manifest = build_pkpass_manifest(pass_builder, identity)
    measured = rates(
        {
            "sign_old": lambda _: old.sign(manifest),
            "sign_new": lambda _: identity.sign(manifest),
            "pass_old": pass_builder(old),
            "pass_new": pass_builder(identity),
            "rsa": rsa_once,
        },
        seconds,
        max(1, rounds),
        clock,
    )
    us = {name: 1e6 / rate for name, rate in measured.items()}

    def change(before: float, after: float) -> str:
        return f"{(after - before) / before:+.1%}"

    return {
        "against": rev,
        "us_per_signature": {
            rev: round(us["sign_old"], 1),
            "working tree": round(us["sign_new"], 1),
        },
        "us_per_pass_build": {
            rev: round(us["pass_old"], 1),
            "working tree": round(us["pass_new"], 1),
        },
        "us_per_bare_rsa2048_sign": round(us["rsa"], 1),
        "signature_cost_change": change(us["sign_old"], us["sign_new"]),
        "pass_build_cost_change": change(us["pass_old"], us["pass_new"]),
        "same_signature_bytes": _same_bytes(old.sign, identity.sign, manifest),
    }


def build_pkpass_manifest(
    pass_builder: Callable[[Any], Callable[[int], bytes]], identity: SigningIdentity
) -> bytes:
    """The manifest.json of one benchmark pass: what each signature is made over."""
    seen: list[bytes] = []

    class Recorder:
        def sign(self, data: bytes) -> bytes:
            seen.append(data)
            return identity.sign(data)

    pass_builder(Recorder())(0)
    return seen[0]


def _same_bytes(
    sign_a: Callable[[bytes], bytes], sign_b: Callable[[bytes], bytes], data: bytes
) -> bool:
    """Whether both make the same signature (signingTime has whole seconds: retried when a
    second boundary falls between the two calls)."""
    for _ in range(5):
        before = int(time.time())
        a, b = sign_a(data), sign_b(data)
        if int(time.time()) == before:
            return a == b
    return False


def _wallet_py3k_runner(
    certs: Path, template: Any, variables: Callable[[int], dict[str, Any]]
) -> Callable[[int], bytes]:
    """wallet-py3k building the same pass content: same render, images and certificate."""
    from wallet import models as wallet

    adders = {
        "headerFields": "addHeaderField",
        "primaryFields": "addPrimaryField",
        "secondaryFields": "addSecondaryField",
        "auxiliaryFields": "addAuxiliaryField",
        "backFields": "addBackField",
    }
    style_classes = {"storeCard": wallet.StoreCard, "coupon": wallet.Coupon}

    def once(i: int) -> bytes:
        v = variables(i)
        pass_json = render.render_pass_json(template, v)
        files, _ = render.bundle_files(template, v)
        info = style_classes[template.style]()
        for group, method in adders.items():
            for field in pass_json[template.style].get(group, []):
                getattr(info, method)(field["key"], field["value"], field.get("label", ""))
        p = wallet.Pass(
            info,
            passTypeIdentifier=pass_json["passTypeIdentifier"],
            organizationName=pass_json["organizationName"],
            teamIdentifier=pass_json["teamIdentifier"],
        )
        p.serialNumber = pass_json["serialNumber"]
        p.description = pass_json["description"]
        p.backgroundColor = pass_json.get("backgroundColor")
        p.foregroundColor = pass_json.get("foregroundColor")
        p.labelColor = pass_json.get("labelColor")
        p.logoText = pass_json.get("logoText")
        barcode = pass_json["barcodes"][0]
        p.barcode = wallet.Barcode(
            barcode["message"], format=barcode["format"], altText=barcode.get("altText", "")
        )
        for name, data in files.items():
            p.addFile(name, io.BytesIO(data))
        # wallet-py3k passes the key password to `openssl smime -passin`; the dev key is
        # unencrypted, so any value works.
        out = p.create(
            str(certs / "pass.pem"),
            str(certs / "pass.key"),
            str(certs / "ca.pem"),
            "unused",
            zip_file=io.BytesIO(),
        )
        return out.getvalue()

    return once


if __name__ == "__main__":
    raise SystemExit(main())
