"""Settings read from WALLETPASS_* environment variables; README lists every one."""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass, field, fields, replace
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from walletpass.egress import Egress
from walletpass.resources import PASS_TEMPLATES_DIR


def _default_home() -> Path:
    return Path(os.environ.get("WALLETPASS_HOME", "instance")).resolve()


class SettingError(ValueError):
    """A setting whose value cannot be used; the message names its environment variable."""


@dataclass(frozen=True)
class Settings:
    """Runtime configuration. Build with :meth:`from_env`; tests use :meth:`override`."""

    home: Path = field(default_factory=_default_home)
    database_url: str = ""
    public_url: str = "http://127.0.0.1:5000"
    secret_key: str = ""
    certs_dir: Path | None = None
    templates_dir: Path = PASS_TEMPLATES_DIR
    pass_type_id: str = "pass.dev.walletpass.local"  # noqa: S105 - an identifier, not a secret
    team_id: str = "DEVTEAM001"
    organization_name: str = "walletpass"
    # Embedded default: a worker thread inside the web process (SQLite); production
    # runs `walletpass worker` processes and sets this to false.
    embedded_worker: bool = True
    apns_url: str = "https://api.push.apple.com"
    apns_ca_file: str | None = None
    apns_concurrency: int = 500
    google_issuer_id: str | None = None
    google_service_account_file: str | None = None
    google_api_url: str = "https://walletobjects.googleapis.com/walletobjects/v1"
    google_keys_url: str = "https://pay.google.com/gp/m/issuer/keys"
    google_callback_sender: str = "GooglePayPasses"
    job_max_attempts: int = 12
    job_lease_seconds: int = 60
    # How long a job retried by time (wallet pushes) is retried before it is kept as dead.
    job_retry_hours: int = 24
    # Done jobs older than this are deleted by the hourly prune (dead ones are kept).
    job_retention_days: int = 7
    # Wallet's log messages and APNs refusals (the Wallet problems page) older than this
    # are deleted by a daily prune.
    wallet_log_days: int = 90
    # Wallet pushes a second that a large change (a campaign, a program-wide change) is
    # paced at: every push makes a phone fetch its pass, so this is the fetches a second
    # the installation serves (0: unpaced). Changes of a few passes push at once.
    push_rate: int = 500
    # How much `walletpass worker` gives way to the web service on a shared machine (the
    # process's nice value, 0-19): the phones its pushes wake fetch from the web service,
    # and their requests should win the CPU over the next pushes' signing.
    worker_nice: int = 10
    # How long a process trusts an API key it has read; a key revoked elsewhere is
    # refused here at the latest this long after (0: read the key on every request).
    api_key_cache_seconds: int = 2
    # Private networks webhooks may reach (CIDRs, comma-separated); public addresses
    # always can, others never (egress.py).
    webhook_allowed_networks: str = ""
    # Where rate limits count (web/ratelimit.py): memory:// in each process, or
    # redis://host:port/db for one count across gunicorn workers and machines.
    ratelimit_storage_url: str = "memory://"
    # When set, /metrics answers only requests with "Authorization: Bearer <token>": its
    # figures (merchants' outbox depths, push outcomes) are not for the public internet.
    metrics_token: str = ""
    # How often each process writes the pass fetches it served (the campaigns' delivery
    # proxy) to pass_events, in one statement (walletpass.passes.fetchlog).
    fetch_log_seconds: float = 2.0
    # The SMTP server the card emails go through (walletpass.mail): smtp://host:port,
    # smtps://user:password@host:465 (TLS from the start) or smtp+starttls://...:587.
    # Empty: no emails; the admin says so where one would be sent.
    smtp_url: str = ""
    # The sender of those emails, e.g. "Demo Café <cards@example.com>".
    mail_from: str = ""
    # Offer the pseudo-language en-XA (every translated text marked, ``?lang=en-XA``):
    # for finding texts no catalogue translates, never in production.
    pseudo_locale: bool = False
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        # Refused here, at start-up, rather than on the first webhook registered or sent.
        try:
            self.webhook_egress  # noqa: B018 - parsed once, kept for every later use
        except ValueError as exc:
            raise SettingError(str(exc)) from None
        if self.job_retry_hours < 1:
            raise SettingError("WALLETPASS_JOB_RETRY_HOURS: must be 1 or more")
        if self.job_retention_days < 1:
            raise SettingError("WALLETPASS_JOB_RETENTION_DAYS: must be 1 or more")
        if self.wallet_log_days < 1:
            raise SettingError("WALLETPASS_WALLET_LOG_DAYS: must be 1 or more")
        if not 0 <= self.worker_nice <= 19:
            raise SettingError("WALLETPASS_WORKER_NICE: must be 0 (no change) to 19")
        if self.push_rate < 0:
            raise SettingError("WALLETPASS_PUSH_RATE: must be 0 (unpaced) or more")
        if self.api_key_cache_seconds < 0:
            raise SettingError("WALLETPASS_API_KEY_CACHE_SECONDS: must be 0 or more")
        if not 0 < self.fetch_log_seconds <= 60:
            raise SettingError("WALLETPASS_FETCH_LOG_SECONDS: must be more than 0, at most 60")
        if self.database_url:
            check_database_url(self.database_url)
        check_ratelimit_storage_url(self.ratelimit_storage_url)
        if self.smtp_url:
            self.smtp_server  # noqa: B018 - parsed once, kept for every email sent
            check_mail_from(self.mail_from)
        level = self.log_level.strip().upper()
        if level not in _LOG_LEVELS:
            raise SettingError(
                f"WALLETPASS_LOG_LEVEL: {self.log_level!r} is not a level; "
                f"use one of {', '.join(_LOG_LEVELS)}"
            )
        object.__setattr__(self, "log_level", level)
        public = urlsplit(self.public_url)
        if public.scheme not in ("http", "https") or not public.hostname:
            raise SettingError(
                f"WALLETPASS_PUBLIC_URL: {self.public_url!r} is not an http(s) address; "
                "write it in full, e.g. https://wallet.example.com"
            )

    @functools.cached_property
    def webhook_egress(self) -> Egress:
        """Where webhooks may connect, from ``webhook_allowed_networks`` (egress.py)."""
        return Egress.parse(self.webhook_allowed_networks)

    @functools.cached_property
    def smtp_server(self) -> SmtpServer | None:
        """Where card emails go, from ``smtp_url``; None when it is unset (no emails)."""
        return parse_smtp_url(self.smtp_url) if self.smtp_url else None

    @property
    def apple_web_service_url(self) -> str:
        return self.public_url.rstrip("/") + "/apple"

    @property
    def resolved_certs_dir(self) -> Path:
        return self.certs_dir or self.home / "certs"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'walletpass.sqlite3'}"

    @property
    def google_enabled(self) -> bool:
        return bool(self.google_issuer_id and self.google_service_account_file)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get("WALLETPASS_" + f.name.upper())
            if raw is None or raw == "":
                continue
            values[f.name] = _coerce("WALLETPASS_" + f.name.upper(), f.type, raw)
        settings = cls(**values)
        if not settings.secret_key:
            # `walletpass init` writes a random key here for the embedded default, so a
            # fresh machine runs without inventing a shared default secret.
            key_file = settings.home / "secret_key"
            if key_file.is_file():
                settings = replace(settings, secret_key=key_file.read_text().strip())
        return settings

    def override(self, **changes: Any) -> Settings:
        return replace(self, **changes)


_LOG_LEVELS = tuple(
    name for name in logging.getLevelNamesMapping() if name not in ("NOTSET", "WARN", "FATAL")
)
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def check_database_url(url: str) -> None:
    """Refuse a database URL this installation cannot use, before anything connects.

    ``postgres://`` (Heroku's spelling) and ``postgresql://`` are refused rather than
    rewritten: SQLAlchemy maps the latter to psycopg2, which is not installed, and a
    silent rewrite would hide which URL is in force.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise SettingError(
            "WALLETPASS_DATABASE_URL: not a database URL; write "
            "postgresql+psycopg://user:password@host:5432/dbname or sqlite:///path/file.sqlite3"
        ) from None
    driver = parsed.drivername
    if driver in ("postgres", "postgresql") or (
        driver.startswith("postgres") and driver != "postgresql+psycopg"
    ):
        fixed = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=True)
        raise SettingError(
            f"WALLETPASS_DATABASE_URL: {driver}:// names no driver walletpass installs; "
            f"write postgresql+psycopg:// ({fixed})"
        )
    if driver not in ("sqlite", "sqlite+pysqlite", "postgresql+psycopg"):
        raise SettingError(
            f"WALLETPASS_DATABASE_URL: {driver!r} is not supported; walletpass runs on "
            "PostgreSQL (postgresql+psycopg://...) or SQLite (sqlite:///...)"
        )
    if driver.startswith("postgresql") and not parsed.database:
        raise SettingError(
            "WALLETPASS_DATABASE_URL: names no database; add it after the host, "
            "e.g. postgresql+psycopg://user@host:5432/walletpass"
        )


_RATELIMIT_SCHEMES = ("redis", "rediss", "redis+unix")


def check_ratelimit_storage_url(url: str) -> None:
    """Refuse a rate limit store walletpass has no client for, before anything is served.

    The ``limits`` library knows more stores (memcached, MongoDB), but their clients are not
    installed: the first limited request would fail instead of the start.
    """
    try:
        parts = urlsplit(url)
        usable = url == "memory://" or (
            parts.scheme in _RATELIMIT_SCHEMES and bool(parts.hostname or parts.path)
        )
        password = parts.password
    except ValueError:  # e.g. an unclosed [ of an IPv6 address
        usable, password = False, None
    if usable:
        return
    shown = url if password is None else url.replace(password, "***", 1)
    raise SettingError(
        f"WALLETPASS_RATELIMIT_STORAGE_URL: {shown!r} is not a store walletpass can use; "
        "write memory:// (each process counts alone) or redis://host:6379/0"
    )


@dataclass(frozen=True)
class SmtpServer:
    """``WALLETPASS_SMTP_URL`` read: how to reach the SMTP server (walletpass.mail.smtp)."""

    host: str
    port: int
    # "plain" (smtp://), "starttls" (smtp+starttls://) or "tls" (smtps://: TLS from the start)
    security: str
    username: str = ""
    # Kept out of repr(): a settings object or an error that shows it never shows this.
    password: str = field(default="", repr=False)

    def describe(self) -> str:
        """``smtp+starttls://cards@mail.example.com:587``: the URL without its password."""
        scheme = {v: k for k, v in _SMTP_SCHEMES.items()}[self.security]
        user = f"{self.username}@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}"


_SMTP_SCHEMES = {"smtp": "plain", "smtp+starttls": "starttls", "smtps": "tls"}
_SMTP_PORTS = {"plain": 25, "starttls": 587, "tls": 465}


def parse_smtp_url(url: str) -> SmtpServer:
    """``smtp://host:25``, ``smtp+starttls://user:password@host:587`` or
    ``smtps://user:password@host:465`` (user and password percent-encoded, as in any URL).

    :raise SettingError: naming the variable, with the password masked.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
        host, password = parts.hostname, parts.password
    except ValueError:  # a port that is not a number, an unclosed [ of an IPv6 address
        parts, port, host, password = None, None, None, None
    shown = url
    if parts is not None and parts.password:
        # The password as it sits between ":" and "@": a bare replace of a short one
        # could mask a letter of the scheme and show the password itself.
        shown = url.replace(f":{parts.password}@", ":***@", 1)
    security = _SMTP_SCHEMES.get(parts.scheme.lower()) if parts is not None else None
    if parts is None or security is None or not host or (parts.path not in ("", "/")):
        raise SettingError(
            f"WALLETPASS_SMTP_URL: {shown!r} is not an SMTP server walletpass can use; write "
            "smtp://host:25, smtp+starttls://user:password@host:587 or "
            "smtps://user:password@host:465"
        )
    return SmtpServer(
        host=host,
        port=port or _SMTP_PORTS[security],
        security=security,
        username=unquote(parts.username or ""),
        password=unquote(password or ""),
    )


def check_mail_from(value: str) -> None:
    """The sender of card emails must be an address (``Demo Café <cards@example.com>``):
    an SMTP server refuses a message without one, every time, and the emails would pile up."""
    _name, address = parseaddr(value)
    if "@" not in address or address.startswith("@") or address.endswith("@"):
        raise SettingError(
            f"WALLETPASS_MAIL_FROM: {value!r} is not an email address; with WALLETPASS_SMTP_URL "
            "set, card emails need a sender, e.g. 'Demo Café <cards@example.com>'"
        )


def _coerce(variable: str, type_name: Any, raw: str) -> Any:
    text = str(type_name)
    if "bool" in text:
        value = raw.strip().lower()
        if value not in _TRUE | _FALSE:
            raise SettingError(
                f"{variable}: {raw!r} is not a yes/no value; use true or false (or 1/0)"
            )
        return value in _TRUE
    if text.startswith("int"):
        try:
            return int(raw)
        except ValueError:
            raise SettingError(f"{variable}: {raw!r} is not a whole number") from None
    if text.startswith("float"):
        try:
            return float(raw)
        except ValueError:
            raise SettingError(f"{variable}: {raw!r} is not a number") from None
    if "Path" in text:
        return Path(raw).resolve()
    return raw
