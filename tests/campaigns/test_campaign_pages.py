"""Admin campaign pages (test client), the CLI, and the browser end to end: a marketer signs
in, creates a time-limited offer, schedules a campaign to a tier with a 10 % holdout, the
worker fans out (APNs stand-in gets the pushes, Google stand-in the messages), and the
campaign page shows its figures."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "google"))

import factories
import pytest
from browser_support import browser, live_server, path_is, screenshot  # noqa: F401
from click.testing import CliRunner
from googlekit import (  # noqa: F401 - fixtures, registered by name
    default_classes_fixture,
    google_fixture,
    google_pki_fixture,
    service_account_fixture,
)
from sqlalchemy import select, update

import walletpass.campaigns.jobs  # noqa: F401 - registers the campaign job kinds
from walletpass.apple.models import Device, Registration
from walletpass.campaigns import services
from walletpass.campaigns.models import Campaign
from walletpass.db import utcnow
from walletpass.google import savelink
from walletpass.google.client import GoogleWalletClient
from walletpass.jobs.models import Job
from walletpass.tenancy.models import User
from walletpass.tenancy.users import hash_password

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def _no_spacing(monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(services, "BATCH_SPACING", timedelta(0))


def _shop(runtime, settings, n=10, role="marketer", hashed=None):  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        m = factories.merchant(s, timezone="Europe/Paris")
        p = factories.program(s, m, "points", name="Coffee Club")
        cards = []
        for i in range(n):
            mem = factories.member(
                s, p, tier="Gold" if i % 2 == 0 else "Silver", marketing_consent=i != 0
            )
            cards.append(factories.member_pass(s, settings, mem))
        user = User(
            merchant_id=m.id,
            email=f"{role}{m.id}@example.test",
            password_hash=hashed or "not-a-hash",
            role=role,
        )
        s.add(user)
        s.flush()
        return {
            "merchant_id": m.id,
            "program_id": p.id,
            "user_id": user.id,
            "email": user.email,
            "pass_ids": [c.id for c in cards],
        }


def _sign_in(client, shop):  # type: ignore[no-untyped-def]
    with client.session_transaction() as session:
        session["user_id"] = shop["user_id"]
        session["csrf"] = "csrf-token-for-tests-0123456789"
    return "csrf-token-for-tests-0123456789"


def test_create_campaign_from_the_form(client, runtime, settings, worker):
    shop = _shop(runtime, settings)
    token = _sign_in(client, shop)
    assert client.get("/admin/campaigns/").status_code == 200
    page = client.get("/admin/campaigns/new")
    assert page.status_code == 200
    assert b"Holdout" in page.data
    counts = client.get("/admin/campaigns/audience.json?kind=tier&tier=Gold").json
    assert counts == {"consenting": 4, "no_consent": 1, "no_pass": 0}
    form = {
        "csrf_token": token,
        "name": "Gold push",
        "title": "Gold",
        "message": "Hi Gold",
        "audience_kind": "tier",
        "tier": "Gold",
        "holdout_percent": "25",
        "when": "now",
    }
    # Without the CSRF token: refused.
    assert client.post("/admin/campaigns/new", data={**form, "csrf_token": ""}).status_code == 400
    bad = client.post("/admin/campaigns/new", data={**form, "holdout_percent": "80", "tier": ""})
    assert bad.status_code == 422
    assert b'data-field="holdout_share"' in bad.data
    assert b'data-field="audience.tier"' in bad.data
    r = client.post("/admin/campaigns/new", data=form)
    assert r.status_code == 302
    cid = int(r.headers["Location"].rstrip("/").rsplit("/", 1)[-1])
    assert client.get(f"/admin/campaigns/{cid}/progress.json").json["status"] == "scheduled"
    worker.run_until_idle()
    progress = client.get(f"/admin/campaigns/{cid}/progress.json").json
    assert (
        progress["status"],
        progress["total"],
        progress["sent"],
        progress["holdout"],
        progress["excluded_no_consent"],
    ) == ("finished", 3, 3, 1, 1)
    detail = client.get(f"/admin/campaigns/{cid}")
    assert detail.status_code == 200
    assert b"Gold push" in detail.data
    assert client.get(f"/admin/campaigns/{cid}/results.json").json["sent"] == 3


def test_staff_and_strangers_are_kept_out(client, runtime, settings):
    staff = _shop(runtime, settings, n=1, role="staff")
    other = _shop(runtime, settings, n=1)
    r = client.get("/admin/campaigns/")
    assert r.status_code == 302
    assert "/admin/login" in r.headers["Location"]
    _sign_in(client, staff)
    assert client.get("/admin/campaigns/").status_code == 403
    # A marketer of another merchant cannot see this merchant's campaign.
    with runtime.transaction() as s:
        c = services.create_campaign(
            s,
            settings,
            merchant_id=staff["merchant_id"],
            name="x",
            message="m",
            audience={"kind": "all"},
        )
        cid = c.id
    _sign_in(client, other)
    assert client.get(f"/admin/campaigns/{cid}").status_code == 404
    assert client.get(f"/admin/campaigns/{cid}/progress.json").status_code == 404


def test_cli_list_launch_results(runtime, settings, worker):
    from walletpass.cli import main

    shop = _shop(runtime, settings)
    with runtime.transaction() as s:
        c = services.create_campaign(
            s,
            settings,
            merchant_id=shop["merchant_id"],
            name="cli",
            message="Hello",
            audience={"kind": "all"},
            holdout_share=0.2,
            seed=1,
        )
        cid = c.id
    # The command reads its settings from the environment, as in production.
    cli = CliRunner(
        env={
            "WALLETPASS_DATABASE_URL": settings.database_url,
            "WALLETPASS_HOME": str(settings.home),
        }
    )
    out = cli.invoke(main, ["campaigns", "list"], obj=settings)
    assert out.exit_code == 0
    assert "draft" in out.output
    assert "cli" in out.output
    out = cli.invoke(main, ["campaigns", "launch", str(cid)], obj=settings)
    assert out.exit_code == 0, out.output
    assert "9 recipients (7 to send, 2 held out, 1 excluded: no consent)" in out.output
    worker.run_until_idle()
    out = cli.invoke(main, ["campaigns", "results", str(cid)], obj=settings)
    assert out.exit_code == 0
    assert "sent 7" in out.output
    assert cli.invoke(main, ["campaigns", "results", "999999"], obj=settings).exit_code != 0


# -- browser end to end -----------------------------------------------------------------


@pytest.fixture
def wallets_settings(settings, apns, google, service_account):  # type: ignore[no-untyped-def]
    return settings.override(
        apns_url=apns.url,
        apns_ca_file=str(apns.pki.ca_cert),
        google_issuer_id="3388000000012345678",
        google_service_account_file=str(service_account.path),
        google_api_url=google.api_url,
        google_keys_url=google.keys_url,
    )


@pytest.mark.browser
def test_marketer_offer_campaign_to_dashboard(
    browser,  # noqa: F811 - the fixture imported above
    runtime,
    wallets_settings,
    apns,
    google,
    default_classes,
):
    from browser_support import LiveServer
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait

    from walletpass.app import create_app
    from walletpass.jobs.worker import Worker

    settings = wallets_settings
    runtime.settings = settings
    shop = _shop(runtime, settings, n=20, hashed=hash_password(PASSWORD))
    # Gold cards: half on iPhones, half saved to Google Wallet.
    tokens, objects = [], []
    with runtime.transaction() as s, GoogleWalletClient(settings) as gclient:
        from walletpass.passes.models import Pass

        for i, pid in enumerate(shop["pass_ids"][::2]):
            row = s.get(Pass, pid)
            if i % 2:
                savelink.save_url_for_pass(s, settings, gclient, row)
                objects.append(row.google_object_id)
            else:
                token = f"{pid:064x}"
                d = Device(
                    merchant_id=shop["merchant_id"],
                    library_id=f"l{pid}",
                    pass_type_id=row.pass_type_id,
                    push_token=token,
                )
                s.add(d)
                s.flush()
                s.add(Registration(merchant_id=shop["merchant_id"], device_id=d.id, pass_id=pid))
                tokens.append(token)
    app = create_app(runtime=runtime, start_worker=False)
    server = LiveServer(app).start()
    try:
        driver = browser(width=1280, height=1000)
        wait = WebDriverWait(driver, 30)  # generous: a loaded CI machine polls slowly
        driver.get(f"{server.url}/admin/campaigns/")
        wait.until(ec.url_contains("/admin/login"))
        driver.find_element(By.ID, "email").send_keys(shop["email"])
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        wait.until(path_is("/admin/campaigns/"))
        # A time-limited offer.
        driver.get(f"{server.url}/admin/offers/new")
        driver.find_element(By.ID, "title").send_keys("2 for 1 pastries")
        driver.find_element(By.ID, "slug").send_keys("two-for-one")
        driver.find_element(By.ID, "discount_value").send_keys("50")
        until = (utcnow() + timedelta(days=5)).strftime("%Y-%m-%dT%H:%M")
        driver.execute_script("document.getElementById('valid_until').value = arguments[0]", until)
        driver.find_element(By.CSS_SELECTOR, ".wpa-form button[type=submit]").click()
        wait.until(path_is(r"/admin/offers/\d+"))  # the new offer's own page
        # The campaign: Gold tier, 10 % holdout, scheduled a little ahead.
        driver.get(f"{server.url}/admin/campaigns/new")
        driver.find_element(By.ID, "name").send_keys("Gold pastries")
        Select(driver.find_element(By.ID, "offer_id")).select_by_visible_text(
            next(
                o.text
                for o in Select(driver.find_element(By.ID, "offer_id")).options
                if o.text.startswith("2 for 1")
            )
        )
        driver.find_element(By.ID, "message").send_keys("2 for 1 on pastries for Gold members")
        Select(driver.find_element(By.ID, "audience_kind")).select_by_value("tier")
        driver.find_element(By.ID, "tier").send_keys("Gold")
        hold = driver.find_element(By.ID, "holdout_percent")
        hold.clear()
        hold.send_keys("10")
        wait.until(ec.text_to_be_present_in_element((By.ID, "audience-count"), "9 members"))
        driver.find_element(By.ID, "when_later").click()
        at = (
            (utcnow() + timedelta(minutes=30))
            .astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris"))
            .strftime("%Y-%m-%dT%H:%M")
        )
        driver.execute_script("document.getElementById('scheduled_at').value = arguments[0]", at)
        driver.find_element(By.ID, "create-campaign").click()
        wait.until(ec.presence_of_element_located((By.ID, "progress")))
        assert driver.find_element(By.ID, "campaign-status").text == "scheduled"
        screenshot(driver, "campaign-scheduled")
        # Time passes: the launch job falls due and the worker fans out.
        with runtime.transaction() as s:
            job = s.scalars(select(Job).where(Job.kind == "campaign.launch")).one()
            assert job.run_at > utcnow() + timedelta(minutes=25)
            s.execute(update(Job).where(Job.id == job.id).values(run_at=utcnow()))
        Worker(runtime, name="e2e").run_until_idle()
        # The progress view picks up the change and reloads with the figures.
        wait.until(ec.text_to_be_present_in_element((By.ID, "campaign-status"), "finished"))
        wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, "[data-r=sent]"), "8"))
        screenshot(driver, "campaign-finished")
        assert driver.find_element(By.CSS_SELECTOR, "[data-p=holdout]").text == "1"
        delivered = driver.find_element(By.CSS_SELECTOR, "[data-r=delivered]").text
        assert "Google: message accepted" in delivered
    finally:
        server.stop()
    with runtime.transaction() as s:
        campaign = s.scalars(select(Campaign)).one()
        assert (campaign.status, campaign.total, campaign.holdout_count) == ("finished", 8, 1)
        assert campaign.title == "2 for 1 pastries"
    # Pushes reached the APNs stand-in, messages the Google stand-in (held-out excluded).
    assert 0 < apns.count <= len(tokens)
    landed = [
        oid
        for oid in objects
        if any(
            m["id"] == f"campaign-{campaign.id}"
            for m in (google.stored("loyaltyObject", oid) or {}).get("messages", [])
        )
    ]
    assert 0 < len(landed) <= len(objects)
    # Every treated Gold card (8) is on exactly one of the two wallets.
    assert apns.count + len(landed) == 8
