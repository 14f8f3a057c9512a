"""Apple web service under gunicorn, walletpass beside django-walletpass 5.0.1: get-pass
(200 and 304 paths), the changed-serials list and a new registration.

Prepares an instance (SQLite by default; PostgreSQL with --database-url), registers
devices for N passes, starts gunicorn, and loads each endpoint from separate client
processes. With the peer (the default; ``--no-peer`` leaves it out, and it needs
``pip install -e '.[bench]'``, see benchmarks/peer_django.py), django-walletpass serves the
same number of passes of the same content, signed with the same certificate, under the
same gunicorn (workers, threads), from a database of its own (a SQLite file beside ours,
or ``<our database>_django`` on the same PostgreSQL server); both servers run throughout
and each endpoint is loaded on ours, then on the peer's, at the same concurrency.

Per endpoint it prints one JSON line per side with requests/s, p50 and p99, and the CPU one
request cost gunicorn, the PostgreSQL backends of the side's database and the load client
(from /proc), then a line of ratios (walletpass / peer: above 1 is walletpass faster or,
for latencies and CPU, slower). The rates and latencies count only the status each
endpoint is for (304 on the conditional get, 201 on a new registration, 200 on the
others); any other is counted apart, with a note. A PostgreSQL database is created when it
does not exist and marked as the benchmarks'; one without the mark is refused, untouched
(as is an existing SQLite file):

    .venv/bin/python benchmarks/bench_webservice.py [--passes 200] [--seconds 5]
        [--concurrency 16] [--workers 2] [--threads 4] [--no-peer]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/walletpass_bench]
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import (
    CpuMeter,
    Gunicorn,
    RequestFactory,
    bench_env,
    bench_home,
    free_port,
    load,
    machine_speed,
    populate,
    print_json,
    side_by_side_arguments,
)
from peer_django import PEER, PREFIX, PeerDjango, peer_database_url

# A tag older than every pass: the list answers every serial of the device. walletpass's
# tags are its own (0 is before all); django-walletpass parses a date.
SINCE_ALWAYS = {"walletpass": "0", "peer": quote("2000-01-01T00:00:00+00:00", safe="")}


def prepare(env: dict[str, str], passes: int) -> list[dict[str, str]]:
    return populate(env, passes, with_device=True)["cards"]


def factories(side: str, prefix: str, cards: list[dict[str, str]]) -> dict[str, RequestFactory]:
    """The endpoints' requests for one side, its Apple web service under ``prefix``."""

    def card_for(conn: int, n: int) -> dict[str, str]:
        return cards[(conn * 7919 + n) % len(cards)]

    def get_pass(conditional: bool) -> RequestFactory:
        def factory(conn: int, n: int):  # type: ignore[no-untyped-def]
            card = card_for(conn, n)
            headers = {"Authorization": f"ApplePass {card['token']}"}
            if conditional:
                headers["If-Modified-Since"] = card["modified"]
            return "GET", f"{prefix}/passes/{card['type']}/{card['serial']}", None, headers

        return factory

    def list_serials(conn: int, n: int):  # type: ignore[no-untyped-def]
        card = card_for(conn, n)
        path = f"{prefix}/devices/{card['device']}/registrations/{card['type']}"
        return "GET", f"{path}?passesUpdatedSince={SINCE_ALWAYS[side]}", None, {}

    def register(conn: int, n: int):  # type: ignore[no-untyped-def]
        # A device never seen before each time: the path that writes (201).
        card = card_for(conn, n)
        device = f"reg{conn:03d}x{n:07d}"
        return (
            "POST",
            f"{prefix}/devices/{device}/registrations/{card['type']}/{card['serial']}",
            b'{"pushToken": "%064x"}' % (conn * 10_000_000 + n),
            {"Authorization": f"ApplePass {card['token']}", "Content-Type": "application/json"},
        )

    return {
        "get_pass_304": get_pass(True),
        "get_pass_200": get_pass(False),
        "list_serials": list_serials,
        "register": register,
    }


EXPECT = {"get_pass_304": 304, "get_pass_200": 200, "list_serials": 200, "register": 201}


def ratios(ours: dict[str, Any], peer: dict[str, Any]) -> dict[str, Any]:
    """walletpass / peer for the rate, latencies and the server's CPU per request."""

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 2) if a and b else None

    def server_cpu(result: dict[str, Any]) -> float | None:
        cpu = result.get("cpu_ms_per_request") or {}
        if cpu.get("server") is None:
            return None
        return cpu["server"] + (cpu.get("postgresql") or 0.0)

    return {
        "requests_per_s": ratio(ours["requests_per_s"], peer["requests_per_s"]),
        "p50_ms": ratio(ours["p50_ms"], peer["p50_ms"]),
        "p99_ms": ratio(ours["p99_ms"], peer["p99_ms"]),
        "cpu_ms_per_request_server_and_postgresql": ratio(server_cpu(ours), server_cpu(peer)),
    }


def warm(port: int, factory: RequestFactory, requests: int) -> None:
    """Every pass fetched once: the 200 path then measures what Wallet sees on a re-fetch
    (walletpass signs each version on its first fetch; the peer's files are in the page
    cache)."""
    load(port, factory, concurrency=2, seconds=60, processes=1, max_requests_per_conn=requests)


def main() -> None:
    parser = side_by_side_arguments(__doc__, passes=200, concurrency=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    home, url = bench_home("wp-bench-ws-", args.database_url)
    port = free_port()
    env = bench_env(home, url, port)
    cards = prepare(env, args.passes)
    sides: dict[str, dict[str, Any]] = {
        "walletpass": {"port": port, "url": url, "cards": cards, "prefix": "/apple/v1"},
    }
    peer = None
    if args.peer:
        peer_home = home / "peer"
        peer_port = free_port()
        # Signed with our instance's very dev certificate (init_instance made it).
        peer = PeerDjango(
            peer_home,
            peer_port,
            peer_database_url(args.database_url, peer_home),
            certs=home / "certs",
        )
        peer.prepare()
        sides["peer"] = {
            "port": peer_port,
            "url": peer.database_url,
            "cards": peer.populate(args.passes),
            "prefix": PREFIX,
        }
    print_json(
        {
            "load_average": os.getloadavg()[0],
            "machine_speed_s": machine_speed(),
            "passes": len(cards),
        }
    )

    with contextlib.ExitStack() as stack:
        for name, side in sides.items():
            server = (
                Gunicorn(env, port, args.workers, args.threads)
                if name == "walletpass"
                else peer.server(args.workers, args.threads)  # type: ignore[union-attr]
            )
            stack.enter_context(server)
            side["meter"] = stack.enter_context(CpuMeter(server.pid, side["url"]))
            side["factories"] = factories(name, side["prefix"], side["cards"])
            warm(side["port"], side["factories"]["get_pass_200"], len(side["cards"]))
        for endpoint, expect in EXPECT.items():
            results = {}
            for name, side in sides.items():
                results[name] = load(
                    side["port"],
                    side["factories"][endpoint],
                    concurrency=args.concurrency,
                    seconds=args.seconds,
                    processes=args.client_processes,
                    meter=side["meter"],
                    expect=expect,
                )
                print_json(
                    {
                        "endpoint": endpoint,
                        "side": "walletpass" if name == "walletpass" else PEER,
                        "database": side["url"].split(":", 1)[0],
                        "gunicorn": f"{args.workers}w x {args.threads}t",
                        **results[name],
                    }
                )
            if "peer" in results:
                print_json(
                    {
                        "endpoint": endpoint,
                        "ratio_walletpass_to_peer": ratios(results["walletpass"], results["peer"]),
                    }
                )
    print_json({"load_average_after": os.getloadavg()[0]})


if __name__ == "__main__":
    main()
