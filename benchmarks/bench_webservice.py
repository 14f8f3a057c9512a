"""Apple web service under gunicorn: get-pass (200 and 304 paths) and the changed-serials list.

Prepares an instance (SQLite by default; PostgreSQL with --database-url), registers
devices for N passes, starts gunicorn, and loads each endpoint from separate client
processes. Prints one JSON line per endpoint with requests/s, p50 and p99, and the CPU one
request cost gunicorn, the PostgreSQL backends of the run's database and the load client
(from /proc). The rates and latencies count only the status each endpoint is for (304 on
the conditional get, 200 on the others); any other is counted apart, with a note. A
PostgreSQL database is created when it does not exist and marked as the benchmarks'; one
without the mark is refused, untouched (as is an existing SQLite file):

    .venv/bin/python benchmarks/bench_webservice.py [--passes 200] [--seconds 5]
        [--concurrency 16] [--workers 2] [--threads 4]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/walletpass_bench]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import (
    CpuMeter,
    Gunicorn,
    bench_env,
    free_port,
    load,
    populate,
    prepare_database,
    print_json,
)


def prepare(env: dict[str, str], passes: int) -> list[dict[str, str]]:
    return populate(env, passes, with_device=True)["cards"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--passes", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="wp-bench-ws-"))
    url = args.database_url or f"sqlite:///{home / 'bench.sqlite3'}"
    prepare_database(url)
    port = free_port()
    env = bench_env(home, url, port)
    cards = prepare(env, args.passes)

    def get_pass(conditional: bool):  # type: ignore[no-untyped-def]
        def factory(conn: int, n: int):  # type: ignore[no-untyped-def]
            card = cards[(conn * 7919 + n) % len(cards)]
            headers = {"Authorization": f"ApplePass {card['token']}"}
            if conditional:
                headers["If-Modified-Since"] = card["modified"]
            return "GET", f"/apple/v1/passes/{card['type']}/{card['serial']}", None, headers

        return factory

    def list_serials(conn: int, n: int):  # type: ignore[no-untyped-def]
        card = cards[(conn * 7919 + n) % len(cards)]
        return (
            "GET",
            f"/apple/v1/devices/{card['device']}/registrations/{card['type']}?passesUpdatedSince=0",
            None,
            {},
        )

    with (
        Gunicorn(env, port, args.workers, args.threads) as server,
        CpuMeter(server.pid, url) as meter,
    ):
        # Warm the signed-parts cache: the 200 path then measures what Wallet sees on a
        # re-fetch (no re-signing), the first fetch of each version signs once.
        load(
            port,
            get_pass(False),
            concurrency=2,
            seconds=60,
            processes=1,
            max_requests_per_conn=len(cards),
        )
        for name, factory, expect in (
            ("get_pass_304", get_pass(True), 304),
            ("get_pass_200", get_pass(False), 200),
            ("list_serials", list_serials, 200),
        ):
            result = load(
                port,
                factory,
                concurrency=args.concurrency,
                seconds=args.seconds,
                processes=args.client_processes,
                meter=meter,
                expect=expect,
            )
            print_json(
                {
                    "endpoint": name,
                    "database": url.split(":", 1)[0],
                    "gunicorn": f"{args.workers}w x {args.threads}t",
                    **result,
                }
            )


if __name__ == "__main__":
    main()
