"""`walletpass worker` gives way to the web service on a shared machine."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from walletpass.config import SettingError, Settings

WALLETPASS = Path(sys.executable).parent / "walletpass"


def _nice_of(pid: int) -> int:
    # /proc/<pid>/stat: the command name in brackets, then fields; nice is the 19th.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[16])


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
@pytest.mark.parametrize(("setting", "expected"), [(None, 10), ("0", 0), ("19", 19)])
def test_a_running_worker_lowers_its_priority(settings, runtime, setting, expected):
    env = {
        **os.environ,
        "WALLETPASS_HOME": str(settings.home),
        "WALLETPASS_DATABASE_URL": settings.resolved_database_url,
        "WALLETPASS_CERTS_DIR": str(settings.resolved_certs_dir),
    }
    if setting is not None:
        env["WALLETPASS_WORKER_NICE"] = setting
    mine = _nice_of(os.getpid())
    want = min(mine + expected, 19)
    with subprocess.Popen(
        [str(WALLETPASS), "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ) as worker:
        try:
            # It lowers its priority once its runtime is open, before its first round;
            # with nothing to lower, it must still be at ours a while after starting.
            deadline = time.monotonic() + (3 if want == mine else 60)
            seen = mine
            while time.monotonic() < deadline and worker.poll() is None and seen == mine:
                time.sleep(0.05)
                seen = _nice_of(worker.pid)
            assert worker.poll() is None
            assert seen == want
        finally:
            worker.terminate()
            worker.wait(timeout=30)


def test_a_nice_value_out_of_range_is_refused():
    with pytest.raises(SettingError, match="WALLETPASS_WORKER_NICE"):
        Settings(worker_nice=25)
