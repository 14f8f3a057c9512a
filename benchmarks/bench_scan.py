"""Till throughput: purchase scans through POST /api/v1/scans under gunicorn on PostgreSQL.

Prepares a merchant with N members (each card registered on a phone, a catalogue of three
rewards) and 16 tills with a key each, starts gunicorn, fires purchase scans (each with a
new receipt id, a random card, connections spread over the tills) from a separate client
process at rising concurrency, and prints one JSON line per level with scans/s, p50 and p99,
then the same server's rate for two requests that do no scan (a 404, and /healthz's one-
statement transaction) as the ceilings a scan works under, all between two readings of the
machine's speed (a fixed Python loop's CPU seconds: this shared VM's speed drifts, so
compare runs with them). A level's rate and latencies count only the scans answered 200;
any other answer (a 429 from the per-key rate limit, say) is counted apart under
``non_200``, with a note. Each line also has the CPU milliseconds one scan cost gunicorn
(master and workers), the PostgreSQL backends of the run's database (and, apart, the
server's WAL writer, checkpointer and background writer) and the load client, read from
/proc around the level; the shares of all cores the run's processes kept busy, that sat
idle and that the hypervisor took; and the rate that cost allows if the cores did nothing
else (``cpu_bound_per_s``), which a level that keeps the cores busy is held to.
Afterwards it checks that the ledger matches the requests answered 200 exactly (entry
count and points), that each member's cached balance equals their ledger sum, and that the
purchases queued pushes for the phones. The tables are ANALYZEd after loading, as
autovacuum would on a running server.

The database is created when it does not exist, and marked as the benchmarks' (its comment
is "created by walletpass benchmarks"); its schema is emptied first. A database without
that mark is refused, untouched.

    .venv/bin/python benchmarks/bench_scan.py [--levels 1,4,8,16,32] [--seconds 5]
        [--warmup 3] [--members 1000]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/walletpass_bench]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import (
    BENCH_DATABASE_URL,
    CpuMeter,
    Gunicorn,
    bench_env,
    free_port,
    load,
    machine_speed,
    populate,
    prepare_database,
    print_json,
)

AMOUNT = "12.00"  # 1 point per 1.00 spent: 12 points per scan
REWARDS = (100, 500, 1000)
FLOORS = (
    ("/no-such-page", "HTTP and Flask only (a 404)"),
    ("/healthz", "HTTP, Flask and a transaction running SELECT 1"),
)


def prepare(env: dict[str, str], members: int, tills: int) -> tuple[list[str], list[str]]:
    # Every card is on a phone (each purchase queues a real push job) and the program has
    # a catalogue, so each answer works out what is redeemable, as a till's would.
    made = populate(env, members, with_device=True, tills=tills, rewards=REWARDS)
    return made["till_keys"], [card["code"] for card in made["cards"]]


def verify(env: dict[str, str], answered_ok: int) -> dict[str, object]:
    from sqlalchemy import func, select

    from walletpass.config import Settings
    from walletpass.jobs.models import Job
    from walletpass.loyalty.models import LedgerEntry, Member
    from walletpass.runtime import Runtime

    runtime = Runtime.create(Settings.from_env(env))
    try:
        with runtime.transaction() as s:
            entries, points = s.execute(
                select(func.count(), func.coalesce(func.sum(LedgerEntry.points), 0))
            ).one()
            mismatched = s.scalar(
                select(func.count())
                .select_from(Member)
                .where(
                    Member.points_balance
                    != select(func.coalesce(func.sum(LedgerEntry.points), 0))
                    .where(LedgerEntry.member_id == Member.id)
                    .scalar_subquery()
                )
            )
            push_jobs = s.scalar(
                select(func.count()).select_from(Job).where(Job.kind == "apple.push")
            )
    finally:
        runtime.close()
    per_scan = int(float(AMOUNT))
    ok = (
        entries == answered_ok
        and points == answered_ok * per_scan
        and mismatched == 0
        and (push_jobs or 0) > 0
    )
    return {
        "check": "ok" if ok else "MISMATCH",
        "requests_ok": answered_ok,
        "ledger_entries": entries,
        "ledger_points": int(points),
        "expected_points": answered_ok * per_scan,
        "members_off_ledger": mismatched,
        # One pending push per phone absorbs the next purchases' (dedupe), so fewer jobs
        # than scans: the worker is not running here.
        "push_jobs_queued": push_jobs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--levels", default="1,4,8,16,32")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    # gunicorn picks sync for one thread, gthread for more; gthread also keeps
    # connections alive with one thread.
    parser.add_argument("--worker-class", default=None)
    parser.add_argument("--client-processes", type=int, default=1)
    # A chain's tills each have their own key (the API's rate limit is per key).
    parser.add_argument("--tills", type=int, default=16)
    parser.add_argument("--database-url", default=BENCH_DATABASE_URL)
    args = parser.parse_args()
    if not args.database_url.startswith("postgresql"):
        parser.error("--database-url: bench_scan runs on PostgreSQL")
    prepare_database(args.database_url)
    home = Path(tempfile.mkdtemp(prefix="wp-bench-scan-"))
    port = free_port()
    env = bench_env(home, args.database_url, port)
    keys, codes = prepare(env, args.members, args.tills)
    answered_ok = 0

    def run(tag: str, level: int, seconds: float, meter: CpuMeter) -> dict[str, object]:
        def factory(conn: int, n: int):  # type: ignore[no-untyped-def]
            rng = random.Random(hash((tag, conn, n)))
            body = {
                "code": rng.choice(codes),
                "action": "purchase",
                "amount": AMOUNT,
                "currency": "EUR",
                "receipt_id": f"{tag}-C{conn}-N{n}",
            }
            headers = {
                "Authorization": f"Bearer {keys[conn % len(keys)]}",
                "Content-Type": "application/json",
            }
            return "POST", "/api/v1/scans", json.dumps(body).encode(), headers

        result = load(
            port,
            factory,
            concurrency=level,
            seconds=seconds,
            processes=min(args.client_processes, level),
            meter=meter,
        )
        nonlocal answered_ok
        answered_ok += result["statuses"].get("200", 0)
        return result

    print_json({"machine_speed_s": machine_speed(), "when": "before"})
    with (
        Gunicorn(env, port, args.workers, args.threads, args.worker_class) as server,
        CpuMeter(server.pid, args.database_url) as meter,
    ):
        # Not reported: each worker process warms its pool, statement caches and the
        # server's prepared statements. Its scans are in the ledger check all the same.
        run("warmup", 8, args.warmup, meter)
        for level_no, level in enumerate(int(x) for x in args.levels.split(",")):
            result = run(f"L{level_no}", level, args.seconds, meter)
            print_json(
                {
                    "level": level,
                    "database": "postgresql",
                    "gunicorn": f"{args.workers}w x {args.threads}t"
                    + (f" {args.worker_class}" if args.worker_class else ""),
                    "scans_per_s": result["requests_per_s"],
                    **result,
                }
            )
        # The same server's ceilings on this machine, at the same concurrency, for scale:
        # what any request costs before a scan does anything of its own.
        for path, what in FLOORS:
            floor = load(
                port,
                lambda conn, n, path=path: ("GET", path, None, {}),
                concurrency=8,
                seconds=args.seconds,
                processes=min(args.client_processes, 8),
                meter=meter,
                expect=404 if path == "/no-such-page" else 200,
            )
            print_json({"floor": what, "path": path, **floor})
    print_json({"machine_speed_s": machine_speed(), "when": "after"})
    print_json(verify(env, answered_ok))


if __name__ == "__main__":
    main()
