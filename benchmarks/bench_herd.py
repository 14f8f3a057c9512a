"""The herd after a change: every pass changes, every phone is pushed, every phone fetches.

N passes (2,000 by default), each registered on one device, are changed at once; then N
simulated phones do what Wallet does when a push wakes it: list the changed serials with
the tag it holds (``GET /devices/<device>/registrations/<type>?passesUpdatedSince=<tag>``),
then fetch the pass with ``If-Modified-Since`` and its ``ApplePass`` token; a phone is
updated when the pass it receives shows the change (the text the change put on the card,
looked for in the ZIP's pass.json and .strings files). Phones are served by ``--concurrency``
threads (32) in ``--client-processes`` processes; each phone starts when its push is sent:

- walletpass: the change is a campaign to every member (``POST /api/v1/campaigns`` then
  ``/launch``, with a CRM key), which the outbox worker (``walletpass worker``, its own
  process; ``--outbox-workers`` for more) fans out, pushing each pass through the APNs
  stand-in (tests/standins, in this process, as bench_push.py uses it). A phone starts
  when its push reaches the stand-in.
  The time counts from the campaign's creation, so it includes the worker's fan-out.
- django-walletpass 5.0.1 (benchmarks/peer_django.py; ``pip install -e '.[bench]'``):
  the change is its documented update of every pass (read_from_model, build, which
  re-signs, write_to_model, save), one pass after another in one process; its push class
  is pointed at this process over UDP instead of APNs, and a phone starts at the push of
  its pass's last save (the update saves three times; see benchmarks/peer_django.py). The
  time counts from the first pass's update.

Before the change each phone learns what a phone holds (its tag from the list, its pass's
Last-Modified), untimed. Prints one JSON line per side: the time from the change until
every push was sent and until every phone is updated, phones/s over the herd (first phone
started to last updated), p50 and p99 per phone (its two requests) and from its push to
updated (with the wait for a free phone thread), and the CPU per phone by process
(gunicorn, our worker or the peer's changing process, the PostgreSQL backends of the
side's database, the phones); then a line of ratios. SQLite by default; with
``--database-url`` PostgreSQL (created when missing and marked as the benchmarks', the
peer in ``<name>_django`` on the same server):

    .venv/bin/python benchmarks/bench_herd.py [--passes 2000] [--concurrency 32]
        [--workers 2] [--threads 4] [--outbox-workers 1] [--no-peer]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/walletpass_bench]
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from harness import (  # noqa: E402
    VENV_BIN,
    Connection,
    CpuMeter,
    Gunicorn,
    bench_env,
    bench_home,
    cpu_seconds,
    free_port,
    machine_speed,
    populate,
    print_json,
    side_by_side_arguments,
)
from peer_django import PEER, PREFIX, PeerDjango, peer_database_url  # noqa: E402

Phone = dict[str, str]


def phones_for(cards: list[dict[str, str]], prefix: str) -> list[Phone]:
    return [
        {
            "serial": c["serial"],
            "token": c["token"],
            "push_token": c["push_token"],
            "list": f"{prefix}/devices/{c['device']}/registrations/{c['type']}",
            "pass": f"{prefix}/passes/{c['type']}/{c['serial']}",
        }
        for c in cards
    ]


def prime(port: int, phones: list[Phone]) -> None:
    """What each phone holds before the change: the list's tag and its pass's
    Last-Modified (the pass fetched once, as when it was added to Wallet)."""
    local = threading.local()

    def one(phone: Phone) -> None:
        conn = getattr(local, "conn", None) or Connection(port)
        local.conn = conn
        status, body = conn.request("GET", phone["list"], None, {})
        assert status == 200, (status, body[:200])
        phone["tag"] = json.loads(body)["lastUpdated"]
        auth = {"Authorization": f"ApplePass {phone['token']}"}
        status, body = conn.request("GET", phone["pass"], None, auth)
        assert status == 200, (status, body[:200])
        phone["modified"] = conn.fields["last-modified"]

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, phones))


def refresh(conn: Connection, phone: Phone, marker: bytes) -> str:
    """Wallet on a push: which of my passes changed since my tag, then the pass if it
    changed since mine. "ok" when the pass received shows ``marker``."""
    since = quote(phone["tag"], safe="")
    status, body = conn.request("GET", f"{phone['list']}?passesUpdatedSince={since}", None, {})
    if status != 200:
        return f"list {status}"
    if phone["serial"] not in json.loads(body)["serialNumbers"]:
        return "not listed"
    headers = {
        "Authorization": f"ApplePass {phone['token']}",
        "If-Modified-Since": phone["modified"],
    }
    status, body = conn.request("GET", phone["pass"], None, headers)
    if status != 200:
        return f"pass {status}"
    with zipfile.ZipFile(io.BytesIO(body)) as z:
        texts = [n for n in z.namelist() if n.endswith((".json", ".strings"))]
        if not any(marker in z.read(n) for n in texts):
            return "old pass"
    return "ok"


def _phones_process(
    port: int, phones: list[Phone], marker: bytes, threads: int, jobs: Any, results: Any
) -> None:
    done: list[tuple[int, float, float, str]] = []
    lock = threading.Lock()

    def run() -> None:
        conn = Connection(port)
        mine = []
        while (i := jobs.get()) is not None:
            start = time.monotonic()
            try:
                outcome = refresh(conn, phones[i], marker)
            except OSError as exc:
                outcome, conn = f"error {type(exc).__name__}", Connection(port)
            mine.append((i, start, time.monotonic(), outcome))
        conn.close()
        with lock:
            done.extend(mine)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    results.put((done, time.process_time()))


class Herd:
    """The phones: ``concurrency`` threads in ``processes`` forked processes, each taking
    the next phone told to start (:meth:`start`) and refreshing it. Fork it before any
    thread of this process runs (the APNs stand-in's)."""

    def __init__(
        self, port: int, phones: list[Phone], marker: bytes, concurrency: int, processes: int
    ) -> None:
        ctx = mp.get_context("fork")
        self.jobs, self.results = ctx.Queue(), ctx.Queue()
        self.concurrency = concurrency
        per = [concurrency // processes + (i < concurrency % processes) for i in range(processes)]
        self.procs = [
            ctx.Process(
                target=_phones_process,
                args=(port, phones, marker, n, self.jobs, self.results),
                daemon=True,
            )
            for n in per
            if n
        ]
        for p in self.procs:
            p.start()

    def start(self, index: int) -> None:
        self.jobs.put(index)

    def finish(self) -> tuple[list[tuple[int, float, float, str]], float]:
        """Every phone's (index, start, end, outcome) once all started ones are done, and
        the phones' CPU seconds."""
        for _ in range(self.concurrency):
            self.jobs.put(None)
        done, cpu = [], 0.0
        for _ in self.procs:
            part, part_cpu = self.results.get()
            done.extend(part)
            cpu += part_cpu
        for p in self.procs:
            p.join()
        return done, cpu


def feed(
    herd: Herd,
    index: dict[str, int],
    pushed: Callable[[], list[str]],
    over: Callable[[], bool],
    timeout: float,
) -> dict[int, float]:
    """Start each phone when its push token is first seen; until all are started, or
    ``over()`` holds with nothing new (the change ended), or ``timeout``. Returns when
    each phone was started (time.monotonic)."""
    started: dict[int, float] = {}
    deadline = time.monotonic() + timeout
    while len(started) < len(index) and time.monotonic() < deadline:
        ended = over()
        tokens = pushed()
        now = time.monotonic()
        for token in tokens:
            i = index.get(token.lower())
            if i is not None and i not in started:
                started[i] = now
                herd.start(i)
        if ended and not tokens:
            break
        time.sleep(0.002)
    return started


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))] * 1000, 1)


def summary(
    side: str,
    t0: float,
    all_pushed: float,
    started: dict[int, float],
    done: list[tuple[int, float, float, str]],
    total: int,
) -> dict[str, Any]:
    outcomes: dict[str, int] = {}
    for _, _, _, outcome in done:
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    updated = outcomes.get("ok", 0)
    first = min((s for _, s, _, _ in done), default=t0)
    last = max((e for _, _, e, _ in done), default=t0)
    herd_s = last - first
    return {
        "side": side,
        "phones": total,
        "phones_updated": updated,
        "outcomes": outcomes,
        "never_pushed": total - len(started),
        "change_to_every_push_s": round(all_pushed - t0, 3),
        "change_to_every_phone_updated_s": round(last - t0, 3) if updated == total else None,
        "change_to_last_phone_s": round(last - t0, 3),
        "herd_s": round(herd_s, 3),
        "phones_per_s": round(len(done) / herd_s, 1) if herd_s > 0 else None,
        "phone_p50_ms": pct([e - s for _, s, e, _ in done], 0.50),
        "phone_p99_ms": pct([e - s for _, s, e, _ in done], 0.99),
        "push_to_updated_p50_ms": pct([e - started[i] for i, _, e, _ in done], 0.50),
        "push_to_updated_p99_ms": pct([e - started[i] for i, _, e, _ in done], 0.99),
    }


def cpu_per_phone(
    meter: CpuMeter, before: dict[str, Any], elapsed_s: float, phones_cpu: float, n: int
) -> dict[str, Any]:
    spent = CpuMeter.per_request(
        before, meter.read(), requests=n, elapsed_s=elapsed_s, client_cpu_s=phones_cpu
    )
    cpu = spent.pop("cpu_ms_per_request")
    cpu["phones"] = cpu.pop("load client")
    if workers := [k for k in cpu if k.startswith("worker ")]:  # the outbox workers, summed
        cpu["worker"] = round(sum(cpu.pop(k) or 0.0 for k in workers), 2)
    # The shares of the machine: idle and stolen only (the peer's changing process has
    # ended by the second reading, so the meter's busy share would leave it out).
    return {"cpu_ms_per_phone": cpu, "cpu_idle": spent["cpu_idle"], "cpu_steal": spent["cpu_steal"]}


def wait_settled(pid: int, timeout: float = 60) -> None:
    """Until a process started moments ago is done starting (its CPU stays flat for
    half a second): its imports are not what the herd costs."""
    deadline = time.monotonic() + timeout
    last = cpu_seconds(pid) or 0.0
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = cpu_seconds(pid)
        if now is None or now - last < 0.02:
            return
        last = now


@contextmanager
def apns_standin(certs: Path, topic: str, tmp: Path) -> Iterator[Any]:
    """The APNs stand-in in this process, trusting our instance's dev CA (the worker
    presents the pass certificate as APNs wants), with a server certificate of a test PKI
    (the worker trusts its CA through WALLETPASS_APNS_CA_FILE)."""
    from standins.apns_server import ApnsStandIn
    from standins.tls import make_test_pki

    pki = make_test_pki(str(tmp))
    standin = ApnsStandIn(certs / "ca.pem", pki.server_cert, pki.server_key, topic=topic)
    standin.start()
    try:
        yield standin, pki.ca_cert
    finally:
        standin.stop()


def run_walletpass(args: argparse.Namespace, home: Path, url: str) -> dict[str, Any]:
    port = free_port()
    env = bench_env(home, url, port)
    made = populate(env, args.passes, with_device=True, consent=True)
    phones = phones_for(made["cards"], "/apple/v1")
    index = {p["push_token"]: i for i, p in enumerate(phones)}
    marker = f"herd-{uuid.uuid4().hex[:12]}"
    with Gunicorn(env, port, args.workers, args.threads) as server:
        prime(port, phones)
        herd = Herd(port, phones, marker.encode(), args.concurrency, args.client_processes)
        with apns_standin(home / "certs", made["cards"][0]["type"], home / "pki") as (
            standin,
            ca,
        ):
            worker_env = {
                **env,
                "WALLETPASS_APNS_URL": standin.url,
                "WALLETPASS_APNS_CA_FILE": str(ca),
            }
            walletpass = str(VENV_BIN / "walletpass")
            # What enrolment queued, out of the way first: the herd's pushes are the change's.
            subprocess.run(
                [walletpass, "worker", "--once"],
                env=worker_env,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            standin.reset()
            workers = [
                subprocess.Popen([walletpass, "worker"], env=worker_env)
                for _ in range(args.outbox_workers)
            ]
            try:
                for worker in workers:
                    wait_settled(worker.pid)
                trees = {f"worker {n}": w.pid for n, w in enumerate(workers, 1)}
                with CpuMeter(server.pid, url, others=trees) as meter:
                    seen = 0

                    def pushed() -> list[str]:
                        nonlocal seen
                        new = standin.received[seen:]
                        seen += len(new)
                        return [p.token for p in new]

                    before = meter.read()
                    t0 = time.monotonic()
                    launch_campaign(port, made["crm_key"], marker)
                    started = feed(
                        herd, index, pushed, lambda: any(w.poll() is not None for w in workers), 600
                    )
                    all_pushed = max(started.values(), default=t0)
                    done, phones_cpu = herd.finish()
                    elapsed = max((e for _, _, e, _ in done), default=t0) - t0
                    result = summary("walletpass", t0, all_pushed, started, done, len(phones))
                    result |= cpu_per_phone(meter, before, elapsed, phones_cpu, len(phones))
                    result["pushes_received"] = seen
            finally:
                for worker in workers:
                    worker.terminate()
                for worker in workers:
                    worker.wait(20)
    return result


def launch_campaign(port: int, crm_key: str, marker: str) -> None:
    """A campaign to every member, showing ``marker`` on their cards, launched now."""
    conn = Connection(port)
    headers = {"Authorization": f"Bearer {crm_key}", "Content-Type": "application/json"}
    body = json.dumps({"name": "Herd", "title": "News", "message": marker}).encode()
    status, answer = conn.request("POST", "/api/v1/campaigns", body, headers)
    assert status == 201, (status, answer[:300])
    campaign = json.loads(answer)["id"]
    status, answer = conn.request("POST", f"/api/v1/campaigns/{campaign}/launch", b"", headers)
    assert status == 200, (status, answer[:300])
    conn.close()


def run_peer(args: argparse.Namespace, home: Path, certs: Path) -> dict[str, Any]:
    port = free_port()
    peer = PeerDjango(home, port, peer_database_url(args.database_url, home), certs=certs)
    peer.prepare()
    phones = phones_for(peer.populate(args.passes), PREFIX)
    index = {p["push_token"]: i for i, p in enumerate(phones)}
    marker = f"herd-{uuid.uuid4().hex[:12]}"
    with peer.server(args.workers, args.threads) as server:
        prime(port, phones)
        herd = Herd(port, phones, marker.encode(), args.concurrency, args.client_processes)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        udp.bind(("127.0.0.1", 0))
        udp.setblocking(False)

        def pushed() -> list[str]:
            tokens = []
            while True:
                try:
                    tokens.append(udp.recv(256).decode())
                except BlockingIOError:
                    return tokens

        with CpuMeter(server.pid, peer.database_url) as meter:
            before = meter.read()
            change = peer.start_change(marker, udp.getsockname()[1])
            started = feed(herd, index, pushed, lambda: change.poll() is not None, 1800)
            changed = peer.change_result(change)
            done, phones_cpu = herd.finish()
            t0 = changed["start"]
            elapsed = max((e for _, _, e, _ in done), default=t0) - t0
            result = summary(PEER, t0, changed["end"], started, done, len(phones))
            result |= cpu_per_phone(meter, before, elapsed, phones_cpu, len(phones))
        udp.close()
    # The changing process and its backend, as it read them itself (both ended before the
    # meter's second reading, which cannot see them).
    cpu = result["cpu_ms_per_phone"]
    cpu["change process"] = round(1000 * changed["cpu_s"] / len(phones), 2)
    if changed["postgresql_cpu_s"] is not None and cpu.get("postgresql") is not None:
        cpu["postgresql"] = round(
            cpu["postgresql"] + 1000 * changed["postgresql_cpu_s"] / len(phones), 2
        )
    return result


def total_cpu(result: dict[str, Any]) -> float:
    cpu = result["cpu_ms_per_phone"]
    return sum(v for k, v in cpu.items() if v is not None and k != "postgresql background")


def main() -> None:
    parser = side_by_side_arguments(__doc__, passes=2000, concurrency=32)
    parser.add_argument(
        "--outbox-workers", type=int, default=1, help="`walletpass worker` processes (1)"
    )
    args = parser.parse_args()
    home, url = bench_home("wp-bench-herd-", args.database_url)
    print_json(
        {
            "passes": args.passes,
            "concurrency": args.concurrency,
            "gunicorn": f"{args.workers}w x {args.threads}t",
            "outbox_workers": args.outbox_workers,
            "database": url.split(":", 1)[0],
            "load_average": os.getloadavg()[0],
            "machine_speed_s": machine_speed(),
        }
    )
    ours = run_walletpass(args, home, url)
    print_json(ours)
    if args.peer:
        # Signed with our instance's very dev certificate.
        peer = run_peer(args, home / "peer", home / "certs")
        print_json(peer)
        ratio: dict[str, Any] = {"ratio_peer_to_walletpass": {}}
        for key in ("change_to_last_phone_s", "phone_p99_ms", "push_to_updated_p99_ms"):
            if ours[key] and peer[key]:
                ratio["ratio_peer_to_walletpass"][key] = round(peer[key] / ours[key], 2)
        if ours["phones_per_s"] and peer["phones_per_s"]:
            ratio["ratio_walletpass_to_peer_phones_per_s"] = round(
                ours["phones_per_s"] / peer["phones_per_s"], 2
            )
        ratio["ratio_peer_to_walletpass"]["cpu_ms_per_phone"] = round(
            total_cpu(peer) / total_cpu(ours), 2
        )
        print_json(ratio)
    print_json({"load_average_after": os.getloadavg()[0]})


if __name__ == "__main__":
    main()
