"""Sign-in, lock-out, roles on every admin route, CSRF."""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest
from test_admin_support import PASSWORD, csrf, make_shop, sign_in

from walletpass.tenancy import users
from walletpass.web import auth
from walletpass.web.auth import MAX_FAILURES

# Reachable without signing in: the sign-in form and its stylesheet.
PUBLIC = {"admin.login", "admin.static"}
# Certificates, the installation's and a shop's own: only an owner acts on them (issue 22).
OWNER_ONLY = {
    "admin.health",
    "admin.certificate",
    "admin.certificate_upload",
    "admin.certificate_remove",
}


def admin_rules(app: Any) -> list[Any]:
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("admin.")]
    assert len(rules) > 20  # the whole admin, not an accidentally empty blueprint
    return rules


def url_of(rule: Any) -> str:
    values = {}
    for name in rule.arguments:
        converter = rule._converters[name]
        values[name] = 1 if type(converter).__name__ == "IntegerConverter" else "x"
    path = rule.build(values, append_unknown=False)[1]
    return path


def methods(rule: Any) -> list[str]:
    return sorted(m for m in rule.methods if m in ("GET", "POST"))


def test_every_admin_route_demands_a_signed_in_marketer_or_owner(app, client, runtime):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime)
    rules = [r for r in admin_rules(app) if r.endpoint not in PUBLIC]

    # Anonymous: every route sends the visitor to sign in (POSTs too, token or not).
    for rule in rules:
        for method in methods(rule):
            r = client.open(url_of(rule), method=method, data={"csrf_token": csrf(client)})
            assert r.status_code == 302, (rule.rule, method, r.status_code)
            assert "/admin/login" in r.headers["Location"], rule.rule

    # Staff: a 403 everywhere but sign-out, GET and POST alike (with a valid token).
    assert sign_in(client, shop.emails["staff"]).status_code == 200  # till-only account
    with client.session_transaction() as s:
        assert "user_id" not in s  # a staff member is not signed in to the admin...
    staff_client = app.test_client()
    # ...so sign the staff user in the way /till does, and try the admin with that session.
    from walletpass.tenancy.models import User

    with runtime.transaction() as s:
        staff_id = s.query(User).filter_by(email=shop.emails["staff"]).one().id
    with staff_client.session_transaction() as s:
        s["user_id"] = staff_id
        s["csrf"] = "staff-token-0123456789"
    for rule in rules:
        if rule.endpoint == "admin.logout":
            continue
        for method in methods(rule):
            r = staff_client.open(
                url_of(rule), method=method, data={"csrf_token": "staff-token-0123456789"}
            )
            assert r.status_code == 403, (rule.rule, method, r.status_code)

    # Marketer and owner: never a 403; a POST without the CSRF token is a 400.
    for role in ("marketer", "owner"):
        c = app.test_client()
        assert sign_in(c, shop.emails[role]).status_code == 302
        for rule in rules:
            if rule.endpoint == "admin.logout":
                continue
            for method in methods(rule):
                r = c.open(url_of(rule), method=method, data={"csrf_token": csrf(c)})
                if role == "marketer" and rule.endpoint in OWNER_ONLY:
                    assert r.status_code == 403, (role, rule.rule, method)
                    continue
                assert r.status_code != 403, (role, rule.rule, method)
                assert r.status_code < 500, (role, rule.rule, method, r.status_code)
                if method == "POST":
                    bad = c.post(url_of(rule), data={"csrf_token": "wrong"})
                    assert bad.status_code == 400, (rule.rule, bad.status_code)
                    missing = c.post(url_of(rule))
                    assert missing.status_code == 400, (rule.rule, missing.status_code)


def test_public_endpoints_are_only_sign_in_and_stylesheet(client):  # type: ignore[no-untyped-def]
    assert client.get("/admin/login").status_code == 200
    with client.get("/admin/static/admin/admin.css") as css:
        assert css.status_code == 200
    r = client.get("/admin/")
    assert r.status_code == 302
    assert "/admin/login" in r.headers["Location"]


def test_sign_in_and_out(client, runtime):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime)
    r = sign_in(client, shop.emails["marketer"])
    assert r.status_code == 302
    assert r.headers["Location"].endswith("/admin/")
    assert client.get("/admin/").status_code == 200
    r = client.post("/admin/logout", data={"csrf_token": csrf(client)})
    assert r.status_code == 302
    assert client.get("/admin/").status_code == 302


def test_sign_in_form_needs_csrf(client, runtime):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime)
    r = client.post("/admin/login", data={"email": shop.emails["owner"], "password": PASSWORD})
    assert r.status_code == 400


def test_next_only_redirects_inside_the_admin(client, runtime):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime)
    client.get("/admin/login")
    r = client.post(
        "/admin/login?next=https://evil.example/",
        data={"email": shop.emails["owner"], "password": PASSWORD, "csrf_token": csrf(client)},
    )
    assert r.headers["Location"].endswith("/admin/")
    client.post("/admin/logout", data={"csrf_token": csrf(client)})
    client.get("/admin/login")
    r = client.post(
        "/admin/login?next=/admin/members",
        data={"email": shop.emails["owner"], "password": PASSWORD, "csrf_token": csrf(client)},
    )
    assert r.headers["Location"].endswith("/admin/members")


def test_wrong_password_message_and_lock_out_after_five_failures(client, runtime):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime)
    email = shop.emails["marketer"]
    for _ in range(MAX_FAILURES):
        r = sign_in(client, email, "not the password")
        assert r.status_code == 200
        assert "Wrong email or password." in r.get_data(as_text=True)
    # Locked now: even the right password is refused, with the reason.
    r = sign_in(client, email)
    body = r.get_data(as_text=True)
    assert r.status_code == 200
    assert re.search(r"Too many failed attempts\. Try again in \d+ minutes\.", body)
    assert client.get("/admin/").status_code == 302


def test_parallel_wrong_passwords_get_five_checks_in_all(app, runtime, monkeypatch):  # type: ignore[no-untyped-def]
    # A guessing run in parallel (30 at once, each from its own address so the per-address
    # limit does not stop it first) gets the account's five tries and no more: the others
    # are refused without their password being checked, and the account is locked.
    shop = make_shop(runtime)
    email = shop.emails["marketer"]
    checked: list[str] = []
    lock = threading.Lock()
    real = users.verify_password

    def counting(password: str, password_hash: str) -> bool:
        with lock:
            checked.append(password)
        return real(password, password_hash)

    monkeypatch.setattr(auth, "verify_password", counting)
    clients = [app.test_client() for _ in range(30)]
    start = threading.Barrier(len(clients))
    answers: list[str] = []

    def guess(n: int) -> None:
        client = clients[n]
        client.get("/admin/login")
        token = csrf(client)
        start.wait()
        r = client.post(
            "/admin/login",
            data={"email": email, "password": f"guess-{n}", "csrf_token": token},
            environ_base={"REMOTE_ADDR": f"10.1.0.{n}"},
        )
        with lock:
            answers.append(r.get_data(as_text=True))

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(checked) == MAX_FAILURES
    assert sum("Wrong email or password." in a for a in answers) == MAX_FAILURES
    assert sum("Too many failed attempts" in a for a in answers) == len(clients) - MAX_FAILURES
    # Locked: the right password waits too.
    r = sign_in(app.test_client(), email)
    assert "Too many failed attempts" in r.get_data(as_text=True)


def test_a_session_cookie_copied_before_sign_out_is_refused_after(app, runtime):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime)
    laptop = app.test_client()
    sign_in(laptop, shop.emails["owner"])
    assert laptop.get("/admin/").status_code == 200
    copied = laptop.get_cookie("session")
    assert copied is not None
    thief = app.test_client()
    thief.set_cookie("session", copied.value)
    assert thief.get("/admin/").status_code == 200  # the same signed cookie, elsewhere

    laptop.post("/admin/logout", data={"csrf_token": csrf(laptop)})
    r = thief.get("/admin/")
    assert r.status_code == 302
    assert "/admin/login" in r.headers["Location"]
    # Signing in again starts a session that works.
    sign_in(laptop, shop.emails["owner"])
    assert laptop.get("/admin/").status_code == 200


@pytest.mark.parametrize("role", ["owner", "marketer"])
def test_admin_roles_reach_the_dashboard(client, runtime, role):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime)
    sign_in(client, shop.emails[role])
    r = client.get("/admin/")
    assert r.status_code == 200
    assert "Dashboard" in r.get_data(as_text=True)


def test_plotly_js_is_served_from_the_package_with_long_caching(client, runtime):  # type: ignore[no-untyped-def]
    from plotly.offline import get_plotlyjs

    shop = make_shop(runtime)
    sign_in(client, shop.emails["marketer"])
    r = client.get("/admin/static/plotly.js?v=1")
    assert r.status_code == 200
    assert r.mimetype == "text/javascript"
    assert r.get_data(as_text=True) == get_plotlyjs()
    assert "max-age=31536000" in r.headers["Cache-Control"]
    assert "immutable" in r.headers["Cache-Control"]
    again = client.get("/admin/static/plotly.js?v=1", headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304
