"""Shared pieces of the HTTP benchmarks: a prepared instance, gunicorn, and a load generator.

The load runs in separate processes (never in the server's), over keep-alive HTTP/1.1
connections on 127.0.0.1, closed-loop: each connection sends its next request when the
previous answer arrives. Latencies are measured per request.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
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


# The PostgreSQL database the benchmarks use unless told otherwise. They create it when it
# is missing and mark it (a comment on the database), and they empty only a marked one.
BENCH_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/walletpass_bench"
BENCH_MARK = "created by walletpass benchmarks"


def _refuse(message: str) -> SystemExit:
    return SystemExit(f"{Path(sys.argv[0]).name}: {message}")


def prepare_database(url: str) -> None:
    """Make ``url`` an empty database the benchmark may fill, or exit with a one-line error.

    PostgreSQL: a database that does not exist is created (through the ``postgres``
    maintenance database) and marked with :data:`BENCH_MARK` as its comment; the public
    schema of a marked one is dropped and made again; one without the mark (somebody's
    real data, say) is refused, untouched. SQLite: only a file that does not exist yet."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.pool import NullPool

    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:" and Path(u.database).exists():
            raise _refuse(f"refusing to use {u.database}: the SQLite file exists already")
        return
    if u.get_backend_name() != "postgresql" or not u.database:
        raise _refuse(f"unsupported database URL {u.render_as_string()}")
    name, where = u.database, f"{u.host or 'localhost'}:{u.port or 5432}"
    try:
        engine = create_engine(
            u.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool
        )
        with engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT shobj_description(oid, 'pg_database') FROM pg_database"
                    " WHERE datname = :name"
                ),
                {"name": name},
            ).first()
            if row is None:
                quoted = conn.dialect.identifier_preparer.quote(name)
                conn.exec_driver_sql(f"CREATE DATABASE {quoted}")
                conn.exec_driver_sql(f"COMMENT ON DATABASE {quoted} IS '{BENCH_MARK}'")
        engine.dispose()
        if row is not None and row[0] != BENCH_MARK:
            raise _refuse(
                f"refusing to empty database {name!r} on {where}: the benchmarks did not"
                f" create it (its comment is not {BENCH_MARK!r}); name one that does not"
                " exist and it will be created"
            )
        print_json({"database": name, "created": row is None})
        if row is not None:
            engine = create_engine(u, poolclass=NullPool)
            with engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
            engine.dispose()
    except OperationalError as exc:
        first = str(exc.orig or exc).strip().splitlines()[0]
        raise _refuse(f"PostgreSQL on {where}: {first}") from None


def side_by_side_arguments(
    description: str | None, *, passes: int, concurrency: int
) -> argparse.ArgumentParser:
    """The options of the benchmarks that measure walletpass beside its peer."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--passes", type=int, default=passes)
    parser.add_argument("--concurrency", type=int, default=concurrency)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--peer",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure django-walletpass 5.0.1 (default: yes)",
    )
    return parser


def bench_home(prefix: str, database_url: str | None) -> tuple[Path, str]:
    """A new temporary folder for the instance, and its database (a SQLite file in it
    unless ``database_url``), prepared (:func:`prepare_database`)."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    url = database_url or f"sqlite:///{home / 'bench.sqlite3'}"
    prepare_database(url)
    return home, url


class Gunicorn:
    """gunicorn serving ``app`` (walletpass unless told otherwise: the peer's benchmarks
    serve a Django project from its own folder, ``cwd``), ready once ``health`` answers 200."""

    def __init__(
        self,
        env: dict[str, str],
        port: int,
        workers: int,
        threads: int,
        worker_class: str | None = None,
        *,
        app: str = "walletpass.app:create_app()",
        cwd: Path = REPO,
        health: str = "/healthz",
    ) -> None:
        self.env, self.port, self.workers, self.threads = env, port, workers, threads
        self.worker_class = worker_class
        self.app, self.cwd, self.health = app, cwd, health
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
            self.app,
        ]
        self.proc = subprocess.Popen(cmd, env=self.env, cwd=self.cwd)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.request("GET", self.health)
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


class Connection:
    """A minimal keep-alive HTTP/1.1 client: the request's bytes are written as built,
    the answer read by its Content-Length (or chunks). http.client parses every answer's
    headers through the email package, which made the load generator cost a tenth of the
    machine the service is measured on. Reconnects when the server closes (gunicorn's
    sync worker closes after each answer). The last answer's header fields are kept, by
    lower-case name, in :attr:`fields`."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.buf = b""
        self.fields: dict[str, str] = {}

    def request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        reused = self.sock is not None
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.buf = b""
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        if body is not None:
            head += f"Content-Length: {len(body)}\r\n"
        try:
            self.sock.sendall(head.encode("latin-1") + b"\r\n" + (body or b""))
            status, fields = self._head()
        except (ConnectionError, BrokenPipeError):
            if not reused or self.buf:
                raise
            # A connection left idle past the server's keep-alive timeout (a phone
            # waiting for its push) was closed by it: once more on a new one.
            self.close()
            return self.request(method, path, body, headers)
        self.fields = fields
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
    expect: int,
    queue: Any,
) -> None:
    import threading

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def run(conn_index: int) -> None:
        conn = Connection(port)
        n = 0
        local: list[float] = []
        local_status: dict[int, int] = {}
        while time.perf_counter() < deadline and (max_requests is None or n < max_requests):
            method, path, body, headers = factory(conn_index, n)
            start = time.perf_counter()
            status, _ = conn.request(method, path, body, headers)
            if status == expect:  # a 429 or an error is quick: not in the latencies
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
    expect: int = 200,
) -> dict[str, Any]:
    """Closed-loop load from ``processes`` client processes; returns the rate and the
    percentiles of the answers with status ``expect`` (only those: any other status is
    counted apart, under ``non_<expect>``, with a note), and, given a ``meter``, what each
    of them cost in CPU (:meth:`CpuMeter.per_request`)."""
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
            target=_client,
            args=(port, factory, first, n, seconds, max_requests_per_conn, expect, queue),
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

    def pct(q: float) -> float | None:
        if not latencies:
            return None
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 2)

    counted = statuses.get(expect, 0)
    result: dict[str, Any] = {
        "concurrency": concurrency,
        # Every answer; the rate, the latencies and the CPU per request are of the
        # ``expect`` ones only.
        "requests": sum(statuses.values()),
        "requests_per_s": round(counted / elapsed, 1),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2) if latencies else None,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "elapsed_s": round(elapsed, 3),
        "client_cpu_s": round(client_cpu, 3),
    }
    others = {str(k): v for k, v in sorted(statuses.items()) if k != expect}
    if others:
        result[f"non_{expect}"] = others
        result["note"] = (
            f"{sum(others.values())} of {result['requests']} answers were not {expect}"
            f" ({', '.join(f'{k}: {v}' for k, v in others.items())}): the rate, latencies"
            f" and CPU per request count only the {expect}s"
        )
    if meter is not None and before is not None:
        result |= meter.per_request(
            before, meter.read(), requests=counted, elapsed_s=elapsed, client_cpu_s=client_cpu
        )
    return result


_TICKS = os.sysconf("SC_CLK_TCK")

# A process as (pid, start time in ticks since boot): a pid handed out again is another one.
ProcKey = tuple[int, int]


def _stat(pid: int) -> tuple[str, int, int, float] | None:
    """(command name, parent pid, start time, CPU seconds of all its threads) of a live
    process, or None when there is none by that pid."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            head, _, rest = f.read().rpartition(")")
    except OSError:
        return None
    fields = rest.split()
    # After the name: state (field 3 in proc(5)), ppid (4), ..., utime (14), stime (15),
    # ..., starttime (22).
    cpu = (int(fields[11]) + int(fields[12])) / _TICKS
    return head.partition("(")[2], int(fields[1]), int(fields[19]), cpu


def cpu_seconds(pid: int) -> float | None:
    """CPU seconds (user and system, all threads) a live process has used so far."""
    found = _stat(pid)
    return None if found is None else found[3]


class CpuMeter:
    """CPU seconds used so far by the processes of the run, from /proc: gunicorn's master
    and its descendants, and the PostgreSQL backends connected to the run's database
    (listed by pg_stat_activity); the server's WAL writer, checkpointer and background
    writer are read apart, as they work for every database on it. The load client's CPU
    comes from :func:`load`. Read around a load, it tells what one request costs each
    side, and how busy the cores were. ``others`` names more process trees to read, each
    as a side of its own (the outbox worker of the herd benchmark, say)."""

    _SHARED = ("walwriter", "checkpointer", "background writer")

    def __init__(
        self,
        server_pid: int,
        database_url: str | None = None,
        others: dict[str, int] | None = None,
    ) -> None:
        self.server_pid = server_pid
        self.others = dict(others or {})
        self._engine: Any = None
        self._conn: Any = None
        if database_url and database_url.startswith("postgresql"):
            from sqlalchemy import create_engine
            from sqlalchemy.pool import NullPool

            self._engine = create_engine(
                database_url, poolclass=NullPool, isolation_level="AUTOCOMMIT"
            )
            self._conn = self._engine.connect()

    def __enter__(self) -> CpuMeter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._conn is not None:
            self._conn.close()
            self._engine.dispose()

    def _trees(self) -> dict[str, dict[ProcKey, float]]:
        """The server's process tree, and each of ``others``'s, by side."""
        # The parent links come from every process's stat line (a kernel need not offer
        # /proc/PID/task/TID/children); CPU is taken from the trees only.
        stats, children = {}, {}
        for entry in os.listdir("/proc"):
            if entry.isdigit() and (found := _stat(int(entry))) is not None:
                stats[int(entry)] = found
                children.setdefault(found[1], []).append(int(entry))
        trees = {}
        for side, root in {"server": self.server_pid, **self.others}.items():
            tree, todo = {}, [root]
            while todo:
                pid = todo.pop()
                if (found := stats.get(pid)) is not None:
                    tree[(pid, found[2])] = found[3]
                    todo.extend(children.get(pid, ()))
            trees[side] = tree
        return trees

    def _postgres(self) -> tuple[dict[ProcKey, float] | None, dict[ProcKey, float] | None]:
        if self._conn is None:
            return None, None
        rows = self._conn.exec_driver_sql(
            "SELECT pid, backend_type FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
            " AND (datname = current_database()"
            " OR backend_type IN ('walwriter', 'checkpointer', 'background writer'))"
        ).all()
        own: dict[ProcKey, float] = {}
        shared: dict[ProcKey, float] = {}
        for pid, backend_type in rows:
            found = _stat(pid)
            # Not PostgreSQL's here when the database is on another machine or container.
            if found is not None and found[0] in ("postgres", "postmaster"):
                side = shared if backend_type in self._SHARED else own
                side[(pid, found[2])] = found[3]
        if not own and not shared:
            return None, None  # the database is not on this machine: its cost is not seen
        return own, shared

    def read(self) -> dict[str, Any]:
        """CPU seconds so far by side and process; also, keyed with a leading underscore,
        the whole machine's idle and stolen seconds (all cores), which
        :meth:`per_request` turns into shares."""
        trees = self._trees()
        postgresql, shared = self._postgres()
        with open("/proc/stat") as f:
            # cpu user nice system idle iowait irq softirq steal ...: all cores, in ticks.
            ticks = [int(v) / _TICKS for v in f.readline().split()[1:9]]
        return {
            **trees,
            "postgresql": postgresql,
            "postgresql background": shared,
            "_idle": ticks[3] + ticks[4],
            # Time the hypervisor gave this VM's cores to someone else.
            "_steal": ticks[7],
        }

    @staticmethod
    def per_request(
        before: dict[str, Any],
        after: dict[str, Any],
        *,
        requests: int,
        elapsed_s: float,
        client_cpu_s: float,
    ) -> dict[str, Any]:
        """CPU milliseconds per request by side; the shares of all cores the run's
        processes kept busy (PostgreSQL's background processes, shared with every other
        database, not in it), that sat idle and that were stolen; the rate the CPU cost
        allows.

        A process in both readings adds its CPU between them; one only in the second
        started between them and adds all of its CPU; one only in the first ended between
        them, and what it used after the first reading is not seen (it is counted under
        ``cpu_processes_ended``, never subtracted)."""
        n = max(requests, 1)
        spent: dict[str, float | None] = {}
        ended: dict[str, int] = {}
        sides = [k for k in after if not k.startswith("_")]
        for side in sides:
            was, now = before[side], after[side]
            if was is None or now is None:
                spent[side] = None
                continue
            # max(): a process's CPU never goes down; this keeps a figure from doing so.
            spent[side] = sum(max(0.0, cpu - was.get(key, 0.0)) for key, cpu in now.items())
            if gone := sum(key not in now for key in was):
                ended[side] = gone
        spent["load client"] = client_cpu_s
        idle = max(0.0, after["_idle"] - before["_idle"])
        steal = max(0.0, after["_steal"] - before["_steal"])
        total = sum(v for k, v in spent.items() if v is not None and k != "postgresql background")
        cores = os.cpu_count() or 1
        capacity = elapsed_s * cores
        result: dict[str, Any] = {
            "cpu_ms_per_request": {
                side: None if v is None else round(1000 * v / n, 2) for side, v in spent.items()
            },
            # Shares of all cores over the load: the run's processes, idle (waiting on I/O
            # included), and stolen by the hypervisor. Read from separate counters (the
            # processes' own, the kernel's idle and steal), so they need not add up to 1.
            "cpu_busy": round(total / capacity, 2),
            "cpu_idle": round(idle / capacity, 2),
            "cpu_steal": round(steal / capacity, 2),
            # If every core did nothing else: what this CPU cost per request allows.
            "cpu_bound_per_s": round(cores * n / total) if total else None,
        }
        if ended:
            result["cpu_processes_ended"] = ended
        return result


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
    consent: bool = False,
) -> dict[str, Any]:
    """Initialise the instance in ``env`` with a merchant, a points program (with a reward
    per cost in ``rewards``), ``tills`` stores with a till key each, a CRM key (campaigns)
    and ``members`` enrolled cards (each registered on a device if asked; consenting to
    marketing, so that a campaign reaches them, if ``consent``)."""
    os.environ.update(env)
    from walletpass.apple import services as apple
    from walletpass.cli.core import init_instance
    from walletpass.config import Settings
    from walletpass.loyalty.enrolment import enroll
    from walletpass.loyalty.models import Program, Reward
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
            crm_key = create_api_key(s, merchant_id=merchant.id, scope="crm")[1]
            for i in range(members):
                _, pass_row, _ = enroll(
                    s,
                    settings,
                    program,
                    name=f"M{i}",
                    email=f"m{i}@bench.test",
                    marketing_consent=consent,
                )
                card = {
                    "serial": pass_row.serial,
                    "token": pass_row.auth_token,
                    "type": pass_row.pass_type_id,
                    "code": pass_row.barcode,
                    "device": f"device{i:06d}",
                    "push_token": f"{i:064x}",
                    "modified": format_datetime(pass_row.modified_at, usegmt=True),
                }
                if with_device:
                    apple.register(s, pass_row, card["device"], card["push_token"])
                cards.append(card)
        if runtime.engine.dialect.name == "postgresql":
            # Planner statistics for the tables just filled, as autovacuum gathers them
            # within a minute on a running server (it is off on some machines, and a
            # benchmark should not measure plans made for empty tables).
            with runtime.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    finally:
        runtime.close()
    return {"till_key": keys[0], "till_keys": keys, "crm_key": crm_key, "cards": cards}
