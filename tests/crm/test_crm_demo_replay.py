"""docs/webhooks.md's "Try it against the demo", run as written: the demo, a source, a
served instance, and the bundled samples signed with openssl and posted with curl."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(
    not (shutil.which("curl") and shutil.which("openssl")), reason="needs curl and openssl"
)
def test_the_samples_replay_against_the_demo_as_documented(tmp_path):
    section = DOCS.read_text().split("### Try it against the demo", 1)[1]
    script = re.search(r"```sh\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]
    port = free_port()
    # The operator reads the secret off the screen; the test reads it off the output. The
    # server listens on a free port instead of 5000, and stops with the script.
    script = (
        script.replace(
            "walletpass webhooks sources create",
            "OUT=$(walletpass webhooks sources create",
        )
        .replace("--program demo-points\n", "--program demo-points)\n", 1)
        .replace("SECRET='whsec_...'", "SECRET=$(echo \"$OUT\" | awk '/^secret:/{print $2}')")
        .replace("walletpass serve &", f"walletpass serve --port {port} & SERVER=$!")
        .replace("127.0.0.1:5000", f"127.0.0.1:{port}")
    )
    wait = f"until curl -sf http://127.0.0.1:{port}/healthz >/dev/null; do sleep 0.2; done\n"
    script = script.replace("for TYPE in", wait + "for TYPE in", 1)
    bin_dir = str(Path(sys.executable).parent)  # this environment's walletpass and python3
    env = {k: v for k, v in os.environ.items() if not k.startswith("WALLETPASS_")} | {
        "WALLETPASS_HOME": str(tmp_path / "home"),
        "PATH": bin_dir + os.pathsep + os.environ["PATH"],
    }
    # The loop a second time: the documented "posting them again" answer.
    script += script[script.index("for TYPE in") :]
    done = subprocess.run(
        ["bash", "-c", "set -eu\ntrap 'kill $SERVER 2>/dev/null || true' EXIT\n" + script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [(a["type"], a["status"]) for a in answers] == [
        ("member.upsert", "applied"),
        ("purchase", "applied"),
        ("member.upsert", "duplicate"),
        ("purchase", "duplicate"),
    ]
    assert answers[0]["result"]["created"] is True
    # 24.90 EUR at one point per euro, floored.
    assert answers[1]["result"]["points_balance"] == 24
