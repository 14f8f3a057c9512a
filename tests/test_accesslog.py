"""gunicorn's access log as walletpass configures it: no pass serial, no device id."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

from gunicorn.config import Config

from walletpass.web.accesslog import AccessLog, redact

SERIAL = "Zk3Vq9LmT2xw"
DEVICE = "6b1d0c2a9f"


def test_a_landing_page_request_is_logged_without_its_serial(tmp_path: Path) -> None:
    log_file = tmp_path / "access.log"
    cfg = Config()
    cfg.set("accesslog", str(log_file))
    log = AccessLog(cfg)
    requests = [
        ("GET", f"/p/{SERIAL}", "", "https://shop.example/join/cafe?src=qr"),
        ("GET", f"/p/{SERIAL}.pkpass", "", f"https://shop.example/p/{SERIAL}"),
        ("GET", f"/apple/v1/passes/pass.example.cafe/{SERIAL}", "", "-"),
        ("POST", f"/apple/v1/devices/{DEVICE}/registrations/pass.example.cafe/{SERIAL}", "", "-"),
        (
            "GET",
            f"/apple/v1/devices/{DEVICE}/registrations/pass.example.cafe",
            "passesUpdatedSince=7",
            "-",
        ),
    ]
    for method, path, query, referer in requests:
        environ = {
            "REQUEST_METHOD": method,
            "RAW_URI": path + (f"?{query}" if query else ""),
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "203.0.113.9",
            "HTTP_REFERER": referer,
        }
        resp = SimpleNamespace(status="200 OK", sent=10, headers=[])
        req = SimpleNamespace(headers=[("REFERER", referer)])
        log.access(resp, req, environ, timedelta(milliseconds=3))
    for handler in log.access_log.handlers:
        handler.flush()
    lines = log_file.read_text().splitlines()
    assert len(lines) == len(requests)
    assert all(SERIAL not in line and DEVICE not in line for line in lines), lines
    assert '"GET /p/<serial> HTTP/1.1" 200' in lines[0]
    assert "/apple/v1/devices/<device>/registrations/pass.example.cafe/<serial>" in lines[3]


def test_other_paths_are_logged_as_they_are() -> None:
    for path in ("/join/cafe", "/api/v1/scans", "/admin/members?q=ada", "/healthz"):
        assert redact(path) == path
