"""Pass rendering cost: walletpass/passes/render.py at a git revision beside the working tree's.

For each shipped template, in the same run and interleaved: the µs of filling one pass.json
(render_pass_json, with fresh variables each call), of one Google class
(render_google_class), and of a whole signed pass build (render, bundle files, manifest,
signature, ZIP) with each renderer. render.py and templates.py are both loaded as they are
at REV. Prints one JSON line:

    .venv/bin/python benchmarks/bench_render.py --against HEAD~1 [--seconds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO))

from at_revision import module_at  # noqa: E402
from bench_sign import cpu_clock, rates  # noqa: E402

from walletpass.certs.dev import create_dev_chain  # noqa: E402
from walletpass.passes import render, templates  # noqa: E402
from walletpass.passes.pkpass import build_pkpass  # noqa: E402
from walletpass.passes.signing import SigningIdentity  # noqa: E402
from walletpass.resources import PASS_TEMPLATES_DIR  # noqa: E402


def variables_for(i: int) -> dict[str, Any]:
    # The stamp count stays: a stamp card's strip is drawn once per count (tens of ms), which
    # is not rendering.
    return {**templates.SAMPLE_VARIABLES, "serial": f"BENCH-{i:08d}", "points": 1000 + i}


def measure(
    name: str,
    renderers: dict[str, tuple[ModuleType, ModuleType]],
    identity: SigningIdentity,
    seconds: float,
    rounds: int,
    clock: Callable[[], float],
) -> dict[str, Any]:
    """µs per pass.json, per Google class and per signed pass build, for each renderer."""
    fns: dict[str, Callable[[int], Any]] = {}
    for label, (render_module, templates_module) in renderers.items():
        template = templates_module.load_template(PASS_TEMPLATES_DIR / name)

        def pass_json(i: int, r: ModuleType = render_module, t: Any = template) -> Any:
            return r.render_pass_json(t, variables_for(i))

        def google(i: int, r: ModuleType = render_module, t: Any = template) -> Any:
            return r.render_google_class(t, variables_for(i))

        def build(i: int, r: ModuleType = render_module, t: Any = template) -> bytes:
            v = variables_for(i)
            files, hashes = r.bundle_files(t, v)
            body = r.dumps_pass_json(r.render_pass_json(t, v))
            return build_pkpass(body, files, hashes, identity).zip_bytes

        fns[f"pass_json {label}"] = pass_json
        if template.google_class is not None:
            fns[f"google_class {label}"] = google
        fns[f"pass_build {label}"] = build
    # The same output from each renderer, or the comparison means nothing.
    outputs = {
        label: json.dumps(
            [r.render_pass_json(t, variables_for(7)), r.render_google_class(t, variables_for(7))]
        )
        for label, (r, tm) in renderers.items()
        for t in [tm.load_template(PASS_TEMPLATES_DIR / name)]
    }
    measured = rates(fns, seconds, rounds, clock)
    result: dict[str, Any] = {"same_output": len(set(outputs.values())) == 1}
    for key, rate in measured.items():
        what, label = key.split(" ", 1)
        result.setdefault(f"us_per_{what}", {})[label] = round(1e6 / rate, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", metavar="REV", required=True, help="git revision")
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--rounds", type=int, default=20, help="interleaved slices")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    parser.add_argument(
        "--template", action="append", help="template name (default: every shipped one)"
    )
    args = parser.parse_args(argv)
    clock = cpu_clock if args.clock == "cpu" else time.perf_counter
    load_before = os.getloadavg()

    old_templates = module_at(args.against, "walletpass/passes/templates.py")
    old_render = module_at(
        args.against,
        "walletpass/passes/render.py",
        imports={"walletpass.passes.templates": old_templates},
    )
    renderers = {args.against: (old_render, old_templates), "working tree": (render, templates)}
    names = args.template or templates.list_templates(PASS_TEMPLATES_DIR)
    with tempfile.TemporaryDirectory() as tmp:
        create_dev_chain(Path(tmp), "pass.dev.walletpass.local", "DEVTEAM001")
        identity = SigningIdentity.from_dir(Path(tmp), None)
        per_template = {
            name: measure(name, renderers, identity, args.seconds, max(1, args.rounds), clock)
            for name in names
        }
    print(
        json.dumps(
            {
                "against": args.against,
                "templates": per_template,
                "seconds_per_measurement": args.seconds,
                "clock": args.clock,
                "load_average_before_after": [
                    round(load_before[0], 2),
                    round(os.getloadavg()[0], 2),
                ],
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
