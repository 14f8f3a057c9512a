"""HEAD on the pass endpoint: Wallet's and a proxy's "has it changed?", answered as GET
without the body (same status, dates, length and authentication), and no fetch."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from walletpass.passes.fetchlog import fetch_log
from walletpass.passes.models import Pass, PassEvent


def _url(card) -> str:  # type: ignore[no-untyped-def]
    return f"/apple/v1/passes/{card['type']}/{card['serial']}"


def _auth(card):  # type: ignore[no-untyped-def]
    return {"Authorization": f"ApplePass {card['token']}"}


def _fetches(runtime) -> int:  # type: ignore[no-untyped-def]
    fetch_log(runtime).flush()
    with runtime.transaction() as s:
        return s.scalar(
            select(func.count()).select_from(PassEvent).where(PassEvent.kind == "fetched")
        )


def test_head_answers_as_get_without_the_body_and_is_no_fetch(client, card, runtime):
    head = client.head(_url(card), headers=_auth(card))
    assert head.status_code == 200
    assert head.data == b""
    assert head.mimetype == "application/vnd.apple.pkpass"
    assert _fetches(runtime) == 0
    get = client.get(_url(card), headers=_auth(card))
    assert get.status_code == 200
    assert head.headers["Last-Modified"] == get.headers["Last-Modified"]
    assert int(head.headers["Content-Length"]) == len(get.data) > 0
    assert _fetches(runtime) == 1


def test_head_keeps_the_token_check_and_the_unknown_pass(client, card):
    assert client.head(_url(card)).status_code == 401
    wrong = {"Authorization": "ApplePass " + "x" * 32}
    assert client.head(_url(card), headers=wrong).status_code == 401
    unknown = f"/apple/v1/passes/{card['type']}/nosuchserial"
    assert client.head(unknown, headers=_auth(card)).status_code == 404


def test_head_with_if_modified_since_is_304_until_the_pass_changes(client, card, runtime):
    first = client.head(_url(card), headers=_auth(card))
    since = {**_auth(card), "If-Modified-Since": first.headers["Last-Modified"]}
    unchanged = client.head(_url(card), headers=since)
    assert unchanged.status_code == 304
    assert unchanged.data == b""
    with runtime.transaction() as s:
        row = s.get(Pass, card["id"])
        row.modified_at = row.modified_at + timedelta(seconds=5)
        row.version += 1
    assert client.head(_url(card), headers=since).status_code == 200
    assert _fetches(runtime) == 0
