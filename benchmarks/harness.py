"""Shared pieces of the HTTP benchmarks: a prepared instance, gunicorn, and a load generator.

The load runs in separate processes (never in the server's), over keep-alive HTTP/1.1
connections on 127.0.0.1, closed-loop: each connection sends its next request when the
previous answer arrives. Latencies are measured per request.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing as mp
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from email.utils import format_datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_env(home: Path, database_url: str, port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "WALLETPASS_HOME": str(home),
            "WALLETPASS_DATABASE_URL": database_url,
            "WALLETPASS_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "WALLETPASS_SECRET_KEY": "benchmark-secret-key-benchmark-secret-key",
            # Pushes are queued, not sent: no APNs here. The worker is not what is measured.
            "WALLETPASS_EMBEDDED_WORKER": "false",
            "WALLETPASS_LOG_LEVEL": "WARNING",
        }
    )
    return env


def reset_postgres(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


class Gunicorn:
    def __init__(
        self,
        env: dict[str, str],
        port: int,
        workers: int,
        threads: int,
        worker_class: str | None = None,
    ) -> None:
        self.env, self.port, self.workers, self.threads = env, port, workers, threads
        self.worker_class = worker_class
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Gunicorn:
        cmd = [
            str(VENV_BIN / "gunicorn"),
            "-b",
            f"127.0.0.1:{self.port}",
            "-w",
            str(self.workers),
            "--threads",
            str(self.threads),
            "--log-level",
            "warning",
            *(["--worker-class", self.worker_class] if self.worker_class else []),
            "walletpass.app:create_app()",
        ]
        self.proc = subprocess.Popen(cmd, env=self.env, cwd=REPO)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("gunicorn did not start")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# A request factory: (connection index, request number) -> (method, path, body, headers)
RequestFactory = Callable[[int, int], tuple[str, str, bytes | None, dict[str, str]]]


class _Connection:
    """A minimal keep-alive HTTP/1.1 client: the request's bytes are written as built,
    the answer read by its Content-Length (or chunks). http.client parses every answer's
    headers through the email package, which made the load generator cost a tenth of the
    machine the service is measured on. Reconnects when the server closes (gunicorn's
    sync worker closes after each answer)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.buf = b""

    def request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.buf = b""
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        if body is not None:
            head += f"Content-Length: {len(body)}\r\n"
        self.sock.sendall(head.encode("latin-1") + b"\r\n" + (body or b""))
        status, fields = self._head()
        if status in (204, 304) or method == "HEAD":  # never a body (RFC 9112, 6.3)
            payload = b""
        elif "content-length" in fields:
            payload = self._exactly(int(fields["content-length"]))
        elif fields.get("transfer-encoding", "").lower() == "chunked":
            payload = self._chunks()
        else:
            payload = self._until_close()
        if fields.get("connection", "").lower() == "close":
            self.close()
        return status, payload

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = None

    def _fill(self) -> None:
        assert self.sock is not None
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the server closed the connection")
        self.buf += data

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _head(self) -> tuple[int, dict[str, str]]:
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        return int(lines[0].split(" ", 2)[1]), fields

    def _exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def _chunks(self) -> bytes:
        out = b""
        while True:
            size = int(self._line().split(b";")[0], 16)
            if size == 0:
                while self._line():  # trailers, then the empty line
                    pass
                return out
            out += self._exactly(size)
            self._line()

    def _until_close(self) -> bytes:
        try:
            while True:
                self._fill()
        except ConnectionError:
            data, self.buf = self.buf, b""
            self.close()
            return data


def _client(
    port: int,
    factory: RequestFactory,
    first_conn: int,
    conns: int,
    seconds: float,
    max_requests: int | None,
    queue: Any,
) -> None:
    import threading

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def run(conn_index: int) -> None:
        conn = _Connection(port)
        n = 0
        local: list[float] = []
        local_status: dict[int, int] = {}
        while time.perf_counter() < deadline and (max_requests is None or n < max_requests):
            method, path, body, headers = factory(conn_index, n)
            start = time.perf_counter()
            status, _ = conn.request(method, path, body, headers)
            local.append(time.perf_counter() - start)
            local_status[status] = local_status.get(status, 0) + 1
            n += 1
        conn.close()
        with lock:
            latencies.extend(local)
            for k, v in local_status.items():
                statuses[k] = statuses.get(k, 0) + v

    threads = [threading.Thread(target=run, args=(first_conn + i,)) for i in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # A forked process's CPU clock starts at zero: this is the load's own cost.
    queue.put((latencies, statuses, time.process_time()))


def load(
    port: int,
    factory: RequestFactory,
    *,
    concurrency: int,
    seconds: float,
    processes: int = 1,
    max_requests_per_conn: int | None = None,
    meter: CpuMeter | None = None,
) -> dict[str, Any]:
    """Closed-loop load from ``processes`` client processes; returns rate and percentiles,
    and, given a ``meter``, what each request cost in CPU (:meth:`CpuMeter.per_request`)."""
    before = meter.read() if meter is not None else None
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    per_proc = [
        concurrency // processes + (1 if i < concurrency % processes else 0)
        for i in range(processes)
    ]
    procs = []
    first = 0
    started = time.perf_counter()
    for n in per_proc:
        if n == 0:
            continue
        p = ctx.Process(
            target=_client, args=(port, factory, first, n, seconds, max_requests_per_conn, queue)
        )
        p.start()
        procs.append(p)
        first += n
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    client_cpu = 0.0
    for _ in procs:
        lat, st, cpu = queue.get()
        client_cpu += cpu
        latencies.extend(lat)
        for k, v in st.items():
            statuses[k] = statuses.get(k, 0) + v
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(q: float) -> float:
        if not latencies:
            return float("nan")
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 2)

    result: dict[str, Any] = {
        "concurrency": concurrency,
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2) if latencies else None,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "elapsed_s": round(elapsed, 3),
        "client_cpu_s": round(client_cpu, 3),
    }
    if meter is not None and before is not None:
        result |= meter.per_request(before, meter.read(), result)
    return result


_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: str) -> tuple[str, int, float] | None:
    """(command name, parent pid, CPU seconds of all its threads) of a live process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            head, _, rest = f.read().rpartition(")")
    except OSError:
        return None  # gone since the directory was listed
    fields = rest.split()
    # After the name: state (field 3 in proc(5)), ppid (4), ..., utime (14), stime (15).
    return head.partition("(")[2], int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICKS


class CpuMeter:
    """CPU seconds used so far by the server under test (gunicorn's master and its
    workers) and by this machine's PostgreSQL (all its processes: backends, WAL writer,
    checkpointer), from /proc. Read around a load, with the load's own CPU beside it, it
    tells what one request costs each side, and how busy the cores were."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid

    def read(self) -> dict[str, float | None]:
        """CPU seconds so far by side; also, keyed with a leading underscore, the whole
        machine's idle and stolen seconds (all cores), which :meth:`per_request` turns
        into shares."""
        procs = {}
        for pid in os.listdir("/proc"):
            if pid.isdigit() and (found := _stat(pid)) is not None:
                procs[int(pid)] = found
        server = {self.server_pid}
        for pid, (_, ppid, _) in procs.items():
            if ppid == self.server_pid:
                server.add(pid)
        postgres = [cpu for name, _, cpu in procs.values() if name == "postgres"]
        with open("/proc/stat") as f:
            # cpu user nice system idle iowait irq softirq steal ...: all cores, in ticks.
            ticks = [int(v) / _TICKS for v in f.readline().split()[1:9]]
        return {
            "server": sum(procs[pid][2] for pid in server if pid in procs),
            # None when the database is not on this machine: its cost is then not seen.
            "postgresql": sum(postgres) if postgres else None,
            "_idle": ticks[3] + ticks[4],
            # Time the hypervisor gave this VM's cores to someone else.
            "_steal": ticks[7],
        }

    @staticmethod
    def per_request(
        before: dict[str, float | None], after: dict[str, float | None], result: dict[str, Any]
    ) -> dict[str, Any]:
        """CPU milliseconds per request by side; the shares of all cores these processes
        kept busy, that sat idle and that were stolen; the rate the CPU cost allows. A
        PostgreSQL backend that ends during the load takes its CPU out of the sum with it:
        the pool keeps its connections, so none should."""
        n = max(result["requests"], 1)
        spent = {
            side: None if after[side] is None else after[side] - before[side]  # type: ignore[operator]
            for side in before
        }
        idle, steal = spent.pop("_idle") or 0.0, spent.pop("_steal") or 0.0
        spent["load client"] = result["client_cpu_s"]
        total = sum(v for v in spent.values() if v is not None)
        cores = os.cpu_count() or 1
        capacity = result["elapsed_s"] * cores
        return {
            "cpu_ms_per_request": {
                side: None if v is None else round(1000 * v / n, 2) for side, v in spent.items()
            },
            # Shares of all cores over the load: these processes, idle (waiting on I/O
            # included), and stolen by the hypervisor. Read from separate counters (the
            # processes' own, the kernel's idle and steal), so they need not add up to 1.
            "cpu_busy": round(total / capacity, 2),
            "cpu_idle": round(idle / capacity, 2),
            "cpu_steal": round(steal / capacity, 2),
            # If every core did nothing else: what this CPU cost per request allows.
            "cpu_bound_per_s": round(cores * n / total) if total else None,
        }


def machine_speed() -> float:
    """Seconds of CPU a fixed pure-Python loop takes now: on a shared VM the same code runs
    up to 40% slower from one hour to the next, so runs are compared with this beside."""
    start = time.process_time()
    total = 0
    for i in range(3_000_000):
        total += i * i
    return round(time.process_time() - start, 3)


def print_json(obj: dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)


def populate(
    env: dict[str, str],
    members: int,
    *,
    with_device: bool = False,
    tills: int = 1,
    rewards: tuple[int, ...] = (),
) -> dict[str, Any]:
    """Initialise the instance in ``env`` with a merchant, a points program (with a reward
    per cost in ``rewards``), ``tills`` stores with a till key each, and ``members``
    enrolled cards (each registered on a device if asked)."""
    os.environ.update(env)
    from walletpass.apple import services as apple
    from walletpass.cli.core import init_instance
    from walletpass.config import Settings
    from walletpass.loyalty.models import Program, Reward
    from walletpass.loyalty.services import enroll
    from walletpass.runtime import Runtime
    from walletpass.tenancy.apikeys import create_api_key
    from walletpass.tenancy.models import Merchant, Store

    settings = init_instance(Settings.from_env())
    runtime = Runtime.create(settings)
    cards: list[dict[str, str]] = []
    try:
        with runtime.transaction() as s:
            merchant = Merchant(slug="bench", name="Bench Café")
            s.add(merchant)
            s.flush()
            stores = [
                Store(merchant_id=merchant.id, code=f"till{n}", name=f"Till {n}")
                for n in range(tills)
            ]
            program = Program(
                merchant_id=merchant.id,
                slug="bench",
                name="Bench Points",
                kind="points",
                template="points_tiers",
                rules={"amount_per_point": "1"},
                design={},
            )
            s.add_all([*stores, program])
            s.flush()
            s.add_all(
                Reward(
                    merchant_id=merchant.id, program_id=program.id, name=f"{cost}", cost_points=cost
                )
                for cost in rewards
            )
            keys = [
                create_api_key(s, merchant_id=merchant.id, scope="till", store_id=store.id)[1]
                for store in stores
            ]
            for i in range(members):
                _, pass_row, _ = enroll(
                    s, settings, program, name=f"M{i}", email=f"m{i}@bench.test"
                )
                card = {
                    "serial": pass_row.serial,
                    "token": pass_row.auth_token,
                    "type": pass_row.pass_type_id,
                    "code": pass_row.barcode,
                    "device": f"device{i:06d}",
                    "modified": format_datetime(pass_row.modified_at, usegmt=True),
                }
                if with_device:
                    apple.register(s, pass_row, card["device"], f"{i:064x}")
                cards.append(card)
        if runtime.engine.dialect.name == "postgresql":
            # Planner statistics for the tables just filled, as autovacuum gathers them
            # within a minute on a running server (it is off on some machines, and a
            # benchmark should not measure plans made for empty tables).
            with runtime.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    finally:
        runtime.close()
    return {"till_key": keys[0], "till_keys": keys, "cards": cards}
