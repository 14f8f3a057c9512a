"""django-walletpass 5.0.1, the peer the web-service benchmarks measure walletpass against.

Installed with the benchmarks' extra (exact pins in pyproject.toml)::

    .venv/bin/pip install -e '.[bench]'

django-walletpass asks for ``aioapns~=3.3`` and walletpass's ``test`` extra for
``aioapns>=4.0``, so pip refuses ``.[test,bench]`` in one go. In a venv that has the test
extra, add the peer without its aioapns pin (its push is never used here, see below)::

    .venv/bin/pip install Django==5.2.19 djangorestframework==3.18.3 python-dateutil==4.0.0
    .venv/bin/pip install --no-deps django-walletpass==5.0.1

:class:`PeerDjango` writes, in a folder of its own, a minimal Django project with
django-walletpass's URLs under ``/passes/``, signing with a development chain made by
walletpass's ``create_dev_chain`` (the same kind of certificate our side signs with, or
the very files when given our instance's certs folder), on SQLite or on a PostgreSQL
database of its own. Its passes carry what ours do: pass.json and images rendered from
walletpass's points_tiers template. It fills it with N passes through django-walletpass's
``PassBuilder`` (each registered on one device), serves it under gunicorn, and changes every
pass the way django-walletpass documents it (README, "Load .pkpass from DB and update")::

    builder = PassBuilder.read_from_model(pass_instance)
    builder.pass_data.update(...)
    builder.build()
    builder.write_to_model(pass_instance)
    pass_instance.save()

``build()`` re-signs the pass; every save sends django-walletpass's ``post_save`` push to
each registration of the pass, and ``write_to_model`` saves twice itself (deleting the old
file, then storing the new one), so one update pushes three times, the first while the
pass has no file. Its push class is the benchmark's (project file benchpeer/push.py, set
by ``WALLETPASS["WALLETPASS_PUSH_CLASS"]``): nothing reaches the network, and no APNs
connection is made, which the peer's default class opens per device and push. The
Django work runs in child processes
(``python peer_django.py populate|change``): Django's settings are global to a process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(BENCH_DIR.parent))

from harness import VENV_BIN, Gunicorn, cpu_seconds, prepare_database  # noqa: E402

PEER = "django-walletpass 5.0.1"
# Where its web service lives (Wallet's webServiceURL); the Apple paths follow it.
PREFIX = "/passes/v1"

_SETTINGS = '''"""The peer's Django settings, written by benchmarks/peer_django.py."""
import json
import os
from pathlib import Path

HOME = Path(os.environ["BENCH_PEER_HOME"])
CERTS = Path(os.environ["BENCH_PEER_CERTS"])
SECRET_KEY = "benchmark-only-benchmark-only-benchmark-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["rest_framework", "django_walletpass"]
# The least a deployment runs: no sessions, CSRF or messages (the web service uses none).
MIDDLEWARE = []
ROOT_URLCONF = "benchpeer.urls"
# CONN_MAX_AGE is set (benchmarks/peer_django.py): each gunicorn thread keeps its
# connection, as a production deployment does; Django's default opens one per request.
DATABASES = {"default": json.loads(os.environ["BENCH_PEER_DATABASE"])}
USE_TZ = True
TIME_ZONE = "UTC"
MEDIA_ROOT = str(HOME / "media")
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
REST_FRAMEWORK = {
    # A pass web service has no users (django-walletpass checks the ApplePass token
    # itself): no session or basic authentication, which would need django.contrib.auth.
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
}
WALLETPASS = {
    "CERT_PATH": str(CERTS / "pass.pem"),
    "KEY_PATH": str(CERTS / "pass.key"),
    "KEY_PASSWORD": None,
    "APPLE_WWDRCA_PEM_PATH": str(CERTS / "ca.pem"),
    "PASS_TYPE_ID": os.environ["BENCH_PEER_PASS_TYPE_ID"],
    "TEAM_ID": os.environ["BENCH_PEER_TEAM_ID"],
    "SERVICE_URL": os.environ["BENCH_PEER_SERVICE_URL"],
    # Its push never reaches the network: django-walletpass sends a pass's pushes through
    # the class this setting names (default django_walletpass.services.PushBackend, which
    # opens an aioapns client per device), and this one only tells the benchmark.
    "WALLETPASS_PUSH_CLASS": "benchpeer.push.BenchPush",
}
'''

_URLS = """from django.http import HttpResponse
from django.urls import include, path

urlpatterns = [
    path("healthz", lambda request: HttpResponse("ok")),
    path("passes/", include("django_walletpass.urls")),
]
"""

_WSGI = """from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
"""

_PUSH = '''"""Stands in for django-walletpass's PushBackend (WALLETPASS_PUSH_CLASS).

Nothing leaves the machine. When BENCH_PEER_PUSH_PORT is set (the herd benchmark's
change), the push of an update's last save is told to 127.0.0.1 on that UDP port as the
device's push token, as APNs would wake the phone. The two pushes write_to_model's own
saves send are not: a phone woken by the first finds the pass without a file (the old one
deleted, the new one not yet stored) and one woken by the second can list the serials
while the last save moves updated_at, and get none (the list reads the newest updated_at,
then the passes with it); the benchmark's phones wait for the pass to be finished.
"""
import os
import socket

_PORT = int(os.environ.get("BENCH_PEER_PUSH_PORT") or 0)
_SOCK = socket.socket(socket.AF_INET, socket.SOCK_DGRAM) if _PORT else None


class _Sent:
    status = "200"  # Pass.push_notification deletes the registration on "410"


class BenchPush:
    def push_notification_from_instance(self, registration):
        # The registrations come from the saved pass's related manager, which sets
        # registration.pazz to that very instance: no query.
        if _SOCK is not None and getattr(registration.pazz, "bench_last_save", False):
            _SOCK.sendto(registration.push_token.encode(), ("127.0.0.1", _PORT))
        return _Sent()
'''


def django_database(url: str) -> dict[str, Any]:
    """Django's DATABASES entry for a SQLAlchemy URL (sqlite:///path or postgresql...)."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": u.database, "CONN_MAX_AGE": 600}
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": u.database,
        "USER": u.username or "",
        "PASSWORD": u.password or "",
        "HOST": u.host or "",
        "PORT": str(u.port or ""),
        "CONN_MAX_AGE": 600,
    }


def peer_database_url(ours: str | None, home: Path) -> str:
    """The peer's database beside ours: a SQLite file in ``home``, or on the same
    PostgreSQL server a database of its own (ours with ``_django`` after the name)."""
    if not ours or ours.startswith("sqlite"):
        return f"sqlite:///{home / 'peer.sqlite3'}"
    from sqlalchemy.engine import make_url

    u = make_url(ours)
    return u.set(database=f"{u.database}_django").render_as_string(hide_password=False)


class PeerDjango:
    """The peer's project in ``home``, its database, and what the benchmarks do with it."""

    def __init__(
        self,
        home: Path,
        port: int,
        database_url: str,
        *,
        certs: Path | None = None,
        pass_type_id: str = "pass.dev.walletpass.local",  # noqa: S107 - not a secret
        team_id: str = "DEVTEAM001",
    ) -> None:
        self.home, self.port, self.database_url = Path(home), port, database_url
        self.certs = certs or self.home / "certs"
        self.pass_type_id, self.team_id = pass_type_id, team_id
        self.env = dict(os.environ)
        self.env.update(
            {
                "BENCH_PEER_HOME": str(self.home),
                "BENCH_PEER_CERTS": str(self.certs),
                "BENCH_PEER_DATABASE": json.dumps(django_database(database_url)),
                "BENCH_PEER_PASS_TYPE_ID": pass_type_id,
                "BENCH_PEER_TEAM_ID": team_id,
                "BENCH_PEER_SERVICE_URL": f"http://127.0.0.1:{port}/passes/",
                "DJANGO_SETTINGS_MODULE": "benchpeer.settings",
                "PYTHONPATH": str(self.home),
            }
        )
        self.env.pop("BENCH_PEER_PUSH_PORT", None)

    def prepare(self) -> None:
        """Write the project, the dev chain (unless given one), the pass content; make
        the database empty (as :func:`harness.prepare_database`)."""
        from walletpass.certs.dev import create_dev_chain

        package = self.home / "benchpeer"
        package.mkdir(parents=True, exist_ok=True)
        for name, text in {
            "__init__.py": "",
            "settings.py": _SETTINGS,
            "urls.py": _URLS,
            "wsgi.py": _WSGI,
            "push.py": _PUSH,
        }.items():
            (package / name).write_text(text)
        if not (self.certs / "pass.pem").exists():
            create_dev_chain(self.certs, self.pass_type_id, self.team_id)
        self._write_pass_content(self.home / "pass")
        prepare_database(self.database_url)

    def _write_pass_content(self, folder: Path) -> None:
        """pass.json and images as walletpass renders its points_tiers card: the peer's
        passes weigh what ours do. django-walletpass replaces the serial, token, pass type,
        team and web service URL when it builds."""
        from walletpass.cli.passes import static_variables
        from walletpass.config import Settings
        from walletpass.passes import render, templates
        from walletpass.resources import PASS_TEMPLATES_DIR

        template = templates.load_template(PASS_TEMPLATES_DIR / "points_tiers")
        variables = static_variables(
            Settings(),
            "PEER",
            self.pass_type_id,
            self.team_id,
            {"points": 1000, "member_name": "Bench Member"},
        )
        files, _ = render.bundle_files(template, variables)
        files["pass.json"] = render.dumps_pass_json(render.render_pass_json(template, variables))
        for name, data in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)

    def _task(self, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
        return subprocess.Popen(
            [str(VENV_BIN / "python"), str(Path(__file__).resolve()), *args],
            env={**self.env, **(extra_env or {})},
            cwd=self.home,
            stdout=subprocess.PIPE,
        )

    @staticmethod
    def _answer(proc: subprocess.Popen) -> dict[str, Any]:
        out, _ = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"peer task failed ({proc.returncode}): {proc.args}")
        return json.loads(out.decode().strip().splitlines()[-1])

    def populate(self, passes: int) -> list[dict[str, str]]:
        """``passes`` passes built by PassBuilder, each registered on one device; the
        cards in the shape of :func:`harness.populate`'s (type, serial, token, device,
        push_token, modified)."""
        return self._answer(self._task("populate", str(passes)))["cards"]

    def server(self, workers: int, threads: int) -> Gunicorn:
        return Gunicorn(
            self.env,
            self.port,
            workers,
            threads,
            app="benchpeer.wsgi:application",
            cwd=self.home,
            health="/healthz",
        )

    def start_change(self, marker: str, push_port: int | None = None) -> subprocess.Popen:
        """Start changing every pass (a back field showing ``marker``) the documented way,
        in a child process; :meth:`change_result` waits for it. With ``push_port``, each
        last push of each pass's update is told there (see _PUSH, benchpeer/push.py)."""
        extra = {"BENCH_PEER_PUSH_PORT": str(push_port)} if push_port else None
        return self._task("change", marker, extra_env=extra)

    def change_result(self, proc: subprocess.Popen) -> dict[str, Any]:
        """What the change took: ``start`` and ``end`` (time.monotonic, comparable across
        processes), its process's CPU seconds and its PostgreSQL backend's (None on
        SQLite), both over the changes only (not Django's start)."""
        return self._answer(proc)


# -- in the child process, with Django set up -------------------------------------------


def _populate(passes: int) -> dict[str, Any]:
    from calendar import timegm

    from django.core.management import call_command
    from django.db import transaction
    from django.utils.http import http_date
    from django_walletpass.models import Registration
    from django_walletpass.services import PassBuilder

    call_command("migrate", verbosity=0)
    home = Path(os.environ["BENCH_PEER_HOME"])
    cards = []
    with transaction.atomic():  # set-up only: one commit, not one per pass
        for i in range(passes):
            builder = PassBuilder(directory=str(home / "pass"))
            builder.build()
            instance = builder.write_to_model()  # new serial and token; saved
            device, token = f"device{i:06d}", f"{i:064x}"
            Registration.objects.create(
                device_library_identifier=device, push_token=token, pazz=instance
            )
            cards.append(
                {
                    "type": instance.pass_type_identifier,
                    "serial": instance.serial_number,
                    "token": instance.authentication_token,
                    "device": device,
                    "push_token": token,
                    "modified": http_date(timegm(instance.updated_at.utctimetuple())),
                }
            )
    return {"cards": cards}


def _change(marker: str) -> dict[str, Any]:
    from django.db import connection
    from django_walletpass.models import Pass
    from django_walletpass.services import PassBuilder

    backend = None
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend = cursor.fetchone()[0]
    passes = list(Pass.objects.order_by("id"))
    backend_before = cpu_seconds(backend) if backend else None
    cpu_before, start = time.process_time(), time.monotonic()
    for instance in passes:  # each save commits: a pass is new to a phone once saved
        builder = PassBuilder.read_from_model(instance)
        style = next(k for k in ("storeCard", "coupon", "generic") if k in builder.pass_data)
        builder.pass_data[style]["backFields"] = [
            f for f in builder.pass_data[style].get("backFields", []) if f["key"] != "news"
        ] + [{"key": "news", "label": "News", "value": marker}]
        builder.build()
        builder.write_to_model(instance)
        instance.bench_last_save = True  # its push wakes the phone (benchpeer/push.py)
        instance.save()
    end, cpu = time.monotonic(), time.process_time() - cpu_before
    backend_cpu = None
    if backend and backend_before is not None:
        backend_cpu = (cpu_seconds(backend) or backend_before) - backend_before
    return {
        "passes": len(passes),
        "start": start,
        "end": end,
        "cpu_s": round(cpu, 3),
        "postgresql_cpu_s": None if backend_cpu is None else round(backend_cpu, 3),
    }


def _main(argv: list[str]) -> None:
    import django

    django.setup()
    if argv[0] == "populate":
        result = _populate(int(argv[1]))
    elif argv[0] == "change":
        result = _change(argv[1])
    else:
        raise SystemExit(f"unknown task {argv[0]!r}")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    _main(sys.argv[1:])
