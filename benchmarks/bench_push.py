"""Push throughput: walletpass's ApnsClient vs aioapns against the same HTTP/2+TLS stand-in.

    .venv/bin/python benchmarks/bench_push.py [--count 100000] [--batch 500] [--with-httpx]

The stand-in (tests/standins/apns_server.py) runs in a separate process so it
does not share the client's GIL; everything talks to 127.0.0.1 with a fresh
test PKI in a temp dir. Prints one JSON line.

``walletpass_outbox`` is the path the service really takes: N ``apple.push`` jobs in
the outbox (SQLite, or ``--database-url``: a PostgreSQL database is created when it does
not exist and marked as the benchmarks'; one without the mark is refused before its tables
are dropped, as is an existing SQLite file), one ``Worker`` in this process claiming
them in batches, sending through the same client and recording each outcome. Only the
worker is timed, not the insertion of the jobs.

``--batch N`` calls ``send_many`` with N tokens at a time, like the job worker
does, to show the per-call overhead (thread hop, loop wake-ups, pipeline
drain at the end of each batch). The aioapns run always uses chunks of
``--aioapns-chunk`` concurrent sends (asyncio.gather).

How aioapns is pointed at the stand-in: it connects to
``protocol_class.APNS_SERVER``/``APNS_PORT`` (class attributes of
``APNsProductionClientProtocol``, hard-coded to api.push.apple.com:443) and
uses that host for the ``host`` header too. We pass ``ssl_context=`` (trusting
the test CA; aioapns then loads ``client_cert`` into it) and replace
``apns.pool.protocol_class`` with a subclass whose APNS_SERVER/APNS_PORT are
127.0.0.1 and the stand-in's port. The server certificate has an IP SAN for
127.0.0.1, so hostname checking stays on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import shutil
import ssl
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from standins.apns_server import serve_in_subprocess  # noqa: E402
from standins.tls import make_test_pki  # noqa: E402

from walletpass.apple.apns import ApnsClient, PushOutcome  # noqa: E402


class StandInProcess:
    def __init__(self, pki) -> None:
        ctx = mp.get_context("spawn")  # no inherited threads/loops from this process
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=serve_in_subprocess,
            args=(
                child,
                str(pki.ca_cert),
                str(pki.server_cert),
                str(pki.server_key),
                pki.pass_type_id,
            ),
            daemon=True,
        )
        self.proc.start()
        child.close()
        if not self.conn.poll(30):
            raise RuntimeError("stand-in did not start")
        self.url: str = self.conn.recv()

    def ask(self, cmd: str):
        self.conn.send(cmd)
        return self.conn.recv()

    def stop(self) -> None:
        try:
            self.conn.send("stop")
            if self.conn.poll(10):
                self.conn.recv()
        finally:
            self.conn.close()
            self.proc.join(10)
            if self.proc.is_alive():
                self.proc.terminate()
                self.proc.join(5)


def tokens_for(n: int, salt: int) -> list[str]:
    return [f"{salt:08x}{i:056x}" for i in range(n)]


def bench_walletpass(pki, url: str, tokens: list[str], batch: int, connections: int, conc: int):
    client = ApnsClient(
        base_url=url,
        cert=pki.client_cert,
        key=pki.client_key,
        ca_file=str(pki.ca_cert),
        connections=connections,
        concurrency=conc,
    )
    try:
        # Warm-up outside the timing: TLS handshake + first SETTINGS exchange.
        client.send_many(pki.pass_type_id, tokens[:1])
        bad = 0
        t0 = time.perf_counter()
        for i in range(1, len(tokens), batch):
            for r in client.send_many(pki.pass_type_id, tokens[i : i + batch]):
                bad += r.outcome != PushOutcome.OK
        elapsed = time.perf_counter() - t0
    finally:
        client.close()
    return (len(tokens) - 1) / elapsed, bad


def bench_aioapns(pki, url: str, tokens: list[str], chunk: int):
    from urllib.parse import urlsplit

    from aioapns import APNs, NotificationRequest, PushType
    from aioapns.connection import APNsProductionClientProtocol

    port = urlsplit(url).port

    class StandInProtocol(APNsProductionClientProtocol):
        APNS_SERVER = "127.0.0.1"
        APNS_PORT = port

    async def run() -> tuple[float, int]:
        ssl_ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
        apns = APNs(
            client_cert=str(pki.client_combined),
            use_sandbox=False,
            topic=pki.pass_type_id,
            ssl_context=ssl_ctx,
            max_connections=1,
        )
        apns.pool.protocol_class = StandInProtocol

        def req(tok: str) -> NotificationRequest:
            return NotificationRequest(
                device_token=tok, message={}, priority=5, push_type=PushType.BACKGROUND
            )

        await apns.send_notification(req(tokens[0]))
        bad = 0
        t0 = time.perf_counter()
        for i in range(1, len(tokens), chunk):
            results = await asyncio.gather(
                *(apns.send_notification(req(t)) for t in tokens[i : i + chunk])
            )
            bad += sum(not r.is_successful for r in results)
        elapsed = time.perf_counter() - t0
        apns.pool.close()
        await asyncio.sleep(0.05)  # let the transport finish closing
        return (len(tokens) - 1) / elapsed, bad

    return asyncio.run(run())


def bench_httpx(pki, url: str, tokens: list[str], chunk: int):
    """The straightforward httpx client, measured to justify not using it."""
    import httpx

    async def run() -> tuple[float, int]:
        ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
        ctx.load_cert_chain(str(pki.client_cert), str(pki.client_key))
        headers = {
            "apns-topic": pki.pass_type_id,
            "apns-push-type": "background",
            "apns-priority": "5",
        }
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(http2=True, verify=ctx, limits=limits) as client:

            async def one(tok: str) -> int:
                r = await client.post(f"{url}/3/device/{tok}", content=b"{}", headers=headers)
                return r.status_code

            await one(tokens[0])
            bad = 0
            t0 = time.perf_counter()
            for i in range(1, len(tokens), chunk):
                codes = await asyncio.gather(*(one(t) for t in tokens[i : i + chunk]))
                bad += sum(c != 200 for c in codes)
            elapsed = time.perf_counter() - t0
        return (len(tokens) - 1) / elapsed, bad

    return asyncio.run(run())


def bench_outbox(
    pki, url: str, tokens: list[str], concurrency: int, database_url: str | None
) -> tuple[float, int]:
    """N push jobs through the outbox and one worker: claim, send, record."""
    from sqlalchemy import func, insert, select

    from walletpass import wiring
    from walletpass.config import Settings
    from walletpass.db import Base, utcnow
    from walletpass.jobs.models import Job, JobStatus
    from walletpass.jobs.worker import Worker
    from walletpass.runtime import Runtime
    from walletpass.tenancy.models import Merchant

    wiring.load_handlers()

    with tempfile.TemporaryDirectory(prefix="bench-outbox-") as home:
        db_url = database_url or f"sqlite:///{home}/outbox.sqlite3"
        # The worker pushes each topic with the certificate of that pass type (issue 22):
        # the stand-in's client certificate is the installation's here.
        certs = Path(home) / "certs"
        certs.mkdir()
        shutil.copy(pki.client_cert, certs / "pass.pem")
        shutil.copy(pki.client_key, certs / "pass.key")
        shutil.copy(pki.ca_cert, certs / "ca.pem")
        runtime = Runtime.create(
            Settings(
                home=Path(home),
                database_url=db_url,
                certs_dir=certs,
                pass_type_id=pki.pass_type_id,
                team_id=pki.team_id,
                apns_url=url,
                apns_ca_file=str(pki.ca_cert),
                apns_concurrency=concurrency,
            )
        )
        try:
            Base.metadata.drop_all(runtime.engine)
            Base.metadata.create_all(runtime.engine)
            now = utcnow()
            with runtime.transaction() as s:
                merchant = Merchant(slug="bench", name="Bench")
                s.add(merchant)
                s.flush()
                rows = [
                    {
                        "merchant_id": merchant.id,
                        "kind": "apple.push",
                        "payload": {"pass_type_id": pki.pass_type_id, "token": t},
                        "dedupe_key": f"apns:{pki.pass_type_id}:{t}",
                        "status": JobStatus.PENDING,
                        "run_at": now,
                        "attempts": 0,
                        "max_attempts": 12,
                        "created_at": now,
                    }
                    for t in tokens
                ]
                for start in range(0, len(rows), 5000):
                    s.execute(insert(Job), rows[start : start + 5000])
            worker = Worker(runtime, name="bench", claim_size=1000)
            t0 = time.perf_counter()
            handled = worker.run_until_idle(max_rounds=10_000)
            elapsed = time.perf_counter() - t0
            with runtime.transaction() as s:
                not_done = s.scalar(
                    select(func.count()).select_from(Job).where(Job.status != JobStatus.DONE)
                )
            assert handled == len(tokens), (handled, len(tokens))
            return len(tokens) / elapsed, int(not_done or 0)
        finally:
            runtime.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=100_000)
    p.add_argument("--batch", type=int, default=0, help="tokens per send_many (0 = all at once)")
    p.add_argument("--connections", type=int, default=1)
    p.add_argument("--concurrency", type=int, default=500)
    p.add_argument("--aioapns-chunk", type=int, default=1000)
    p.add_argument("--skip-aioapns", action="store_true")
    p.add_argument("--with-httpx", action="store_true")
    p.add_argument("--skip-outbox", action="store_true")
    p.add_argument(
        "--database-url",
        default=None,
        help="outbox database for walletpass_outbox (default: a SQLite file)",
    )
    args = p.parse_args(argv)
    if args.database_url and not args.skip_outbox:
        from harness import prepare_database

        # bench_outbox drops every table of it: only a database the benchmarks made.
        prepare_database(args.database_url)

    n = args.count + 1  # +1 warm-up push per client, not timed
    batch = args.batch or n
    out: dict[str, object] = {"count": args.count, "batch": args.batch or args.count}
    errors: list[str] = []
    cpu: dict[str, dict[str, float]] = {}

    with tempfile.TemporaryDirectory(prefix="bench-push-") as tmp:
        pki = make_test_pki(tmp)
        standin = StandInProcess(pki)
        try:
            runs = [
                (
                    "walletpass",
                    lambda toks: bench_walletpass(
                        pki, standin.url, toks, batch, args.connections, args.concurrency
                    ),
                )
            ]
            if not args.skip_outbox:
                runs.append(
                    (
                        "walletpass_outbox",
                        lambda toks: bench_outbox(
                            pki, standin.url, toks, args.concurrency, args.database_url
                        ),
                    )
                )
            if not args.skip_aioapns:
                runs.append(
                    (
                        "aioapns",
                        lambda toks: bench_aioapns(pki, standin.url, toks, args.aioapns_chunk),
                    )
                )
            if args.with_httpx:
                runs.append(
                    ("httpx", lambda toks: bench_httpx(pki, standin.url, toks, args.aioapns_chunk))
                )
            for salt, (name, fn) in enumerate(runs):
                standin.ask("reset")
                tokens = tokens_for(n, salt)
                cpu0, srv0 = time.process_time(), standin.ask("cpu")
                rate, bad = fn(tokens)
                cpu1, srv1 = time.process_time(), standin.ask("cpu")
                got = standin.ask("count")
                out[f"{name}_pushes_per_s"] = round(rate)
                # CPU per push on each side: the two processes share the machine, so
                # this shows where the time goes independent of scheduling noise.
                cpu[name] = {
                    "client_us": round((cpu1 - cpu0) / n * 1e6, 1),
                    "standin_us": round((srv1 - srv0) / n * 1e6, 1),
                }
                if bad:
                    errors.append(f"{name}: {bad} non-200 results")
                if got != n:
                    errors.append(f"{name}: stand-in received {got}, expected {n}")
        finally:
            standin.stop()

    if "aioapns_pushes_per_s" in out:
        out["ratio"] = round(out["walletpass_pushes_per_s"] / out["aioapns_pushes_per_s"], 2)
    out["cpu_per_push"] = cpu
    if errors:
        out["errors"] = errors
    print(json.dumps(out))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
