"""The pass fetches answered beneath Flask (walletpass.apple.fastpath) are the app's own
answers, and everything else still reaches the app."""

from __future__ import annotations

import pytest

from walletpass.apple import fastpath
from walletpass.passes import stored

LATER = "Fri, 01 Jan 2100 00:00:00 GMT"


def _url(card) -> str:  # type: ignore[no-untyped-def]
    return f"/apple/v1/passes/{card['type']}/{card['serial']}"


def _auth(card):  # type: ignore[no-untyped-def]
    return {"Authorization": f"ApplePass {card['token']}"}


@pytest.fixture
def through_flask(app):  # type: ignore[no-untyped-def]
    """How many requests reached Flask's hooks."""
    seen: list[str] = []

    @app.before_request
    def count() -> None:
        from flask import request

        seen.append(request.method)

    return seen


@pytest.fixture
def app_alone(app):  # type: ignore[no-untyped-def]
    """A client of the same app without the layer beneath it."""
    assert isinstance(app.wsgi_app, fastpath.PassFetches)
    inner = app.wsgi_app.app

    class Alone:
        def get(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            layered = app.wsgi_app
            app.wsgi_app = inner
            try:
                return app.test_client().get(*args, **kwargs)
            finally:
                app.wsgi_app = layered

    return Alone()


def _kept(client, card) -> None:  # type: ignore[no-untyped-def]
    assert client.get(_url(card), headers=_auth(card)).status_code == 200  # signs and keeps


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("kept", 200),
        ("not modified", 304),
        ("wrong token", 401),
        ("no such pass", 404),
        ("unreadable date", 200),
    ],
)
def test_each_answer_beneath_flask_is_the_one_the_app_gives(
    client, app_alone, card, through_flask, case, status
):
    _kept(client, card)
    url, headers = _url(card), _auth(card)
    if case == "not modified":
        headers["If-Modified-Since"] = LATER
    elif case == "wrong token":
        headers["Authorization"] = "ApplePass " + "x" * 43
    elif case == "no such pass":
        url = url[:-1] + ("0" if url[-1] != "0" else "1")
    elif case == "unreadable date":
        headers["If-Modified-Since"] = "yesterday"
    through_flask.clear()

    fast = client.get(url, headers=headers)
    assert through_flask == []  # answered beneath Flask
    slow = app_alone.get(url, headers=headers)
    assert through_flask == ["GET"]

    assert fast.status_code == slow.status_code == status
    assert fast.data == slow.data
    if status == 304:
        # The view's 304 names Last-Modified too, but werkzeug drops it from a 304 as an
        # entity header; beneath Flask it stays, the pass's change time as on its 200.
        kept = client.get(url, headers=_auth(card))
        assert fast.headers["Last-Modified"] == kept.headers["Last-Modified"]
    else:
        assert fast.headers.get("Last-Modified") == slow.headers.get("Last-Modified")
    if status == 200:
        assert fast.headers["Content-Type"] == slow.headers["Content-Type"]
        assert fast.headers["Content-Type"] == "application/vnd.apple.pkpass"
        assert int(fast.headers["Content-Length"]) == len(fast.data) > 1000


def test_a_pass_still_to_sign_and_a_head_go_through_the_app(client, card, through_flask):
    first = client.get(_url(card), headers=_auth(card))
    assert first.status_code == 200
    assert through_flask == ["GET"]  # rendered and signed by the view
    head = client.head(_url(card), headers=_auth(card))
    assert head.status_code == 200
    assert through_flask == ["GET", "HEAD"]
    again = client.get(_url(card), headers=_auth(card))
    assert again.data == first.data
    assert through_flask == ["GET", "HEAD"]  # the kept parts, beneath Flask


def test_while_the_service_is_not_ready_the_app_answers_503(app, client, card, monkeypatch):
    _kept(client, card)
    readiness = app.extensions["walletpass_readiness"]
    monkeypatch.setattr(readiness, "problem", lambda: "database schema is behind the code")
    answer = client.get(_url(card), headers=_auth(card))
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "5"


def test_a_failure_beneath_flask_is_answered_by_the_app(client, card, through_flask, monkeypatch):
    _kept(client, card)
    real = stored.fetch_row
    calls: list[int] = []

    def fails_once(conn, pass_type_id, serial):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("connection reset")
        return real(conn, pass_type_id, serial)

    monkeypatch.setattr(stored, "fetch_row", fails_once)
    through_flask.clear()
    answer = client.get(_url(card), headers=_auth(card))
    assert answer.status_code == 200
    assert calls == [1, 1]
    assert through_flask == ["GET"]
