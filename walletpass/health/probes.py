"""The checks that make a call: APNs with the push certificate, the public URL, Google.

Each makes one short request with the installation's own credentials, the way the
service itself would, so a failure here is the failure a phone would meet.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives import serialization

from walletpass.apple.apns import ApnsClient
from walletpass.config import Settings
from walletpass.google.client import (
    GoogleError,
    GoogleNotFound,
    GoogleTransient,
    GoogleWalletClient,
)
from walletpass.health.checks import IdentityInUse
from walletpass.health.findings import Finding, Status
from walletpass.i18n.catalogues import N_

# A token of the right shape that no device has: APNs checks the certificate and the
# topic before the token, so "400 BadDeviceToken" means both were accepted and nothing
# reaches any phone.
DRY_RUN_TOKEN = "0" * 64
TIMEOUT_S = 5.0
_TOPIC_REFUSED = frozenset({"TopicDisallowed", "BadTopic", "MissingTopic"})


# ------------------------------------------------------------------ APNs


def check_apns(item: IdentityInUse, settings: Settings, topic: str) -> Finding:
    """Push to :data:`DRY_RUN_TOKEN` on ``topic`` with the certificate that signs it."""
    identity = item.identity
    facts = {"apns_url": settings.apns_url, "topic": topic, "token": DRY_RUN_TOKEN}
    title = N_("APNs push certificate")
    if identity is None:
        return Finding(
            "apns",
            title,
            Status.ERROR,
            N_("No push can be sent: the certificate that would authenticate it is missing."),
            facts=facts,
            subject=item.label,
        )
    key_pem = identity.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        with ApnsClient(
            base_url=settings.apns_url,
            cert=identity.cert_pem,
            key=key_pem,
            ca_file=settings.apns_ca_file,
            concurrency=1,
            timeout=TIMEOUT_S,
        ) as client:
            [result] = client.send_many(topic, [DRY_RUN_TOKEN])
    except (ValueError, OSError) as exc:  # a bad URL, a CA file that cannot be read
        return Finding(
            "apns",
            title,
            Status.ERROR,
            N_("Cannot call APNs: %(reason)s"),
            {"reason": str(exc)},
            facts,
            item.label,
        )
    status, reason = result.status, result.reason or ""
    facts["answer"] = f"{status} {reason}".strip() if status else reason
    params = {"topic": topic, "url": settings.apns_url, "reason": reason, "status": str(status)}
    if status is None:
        message = N_(
            "APNs at %(url)s could not be reached or refused the TLS connection "
            "(%(reason)s): no push arrives. Check the network to APNs (port 443) and that "
            "the certificate is Apple's (a development chain is refused by Apple)."
        )
        return Finding("apns", title, Status.ERROR, message, params, facts, item.label)
    if status == 200 or (status == 400 and reason in ("BadDeviceToken", "DeviceTokenNotForTopic")):
        return Finding(
            "apns",
            title,
            Status.OK,
            N_(
                "APNs accepts this certificate for topic %(topic)s (a dry push answered "
                "%(reason)s)."
            ),
            {**params, "reason": reason or "200"},
            facts,
            item.label,
        )
    if status == 400 and reason in _TOPIC_REFUSED:
        message = N_(
            "APNs refuses pushes to %(topic)s with this certificate (400 %(reason)s): its "
            "Pass Type ID is not %(topic)s, so devices are never told of changes. Use the "
            "certificate of %(topic)s."
        )
        return Finding("apns", title, Status.ERROR, message, params, facts, item.label)
    if status == 403:
        message = N_(
            "APNs refused the certificate (403 %(reason)s): it is revoked, expired or not a "
            "Pass Type ID certificate, so no push arrives. Make a new one in the Apple "
            "Developer portal and import it."
        )
        return Finding("apns", title, Status.ERROR, message, params, facts, item.label)
    message = N_("APNs answered %(status)s %(reason)s to a dry push on %(topic)s.")
    return Finding("apns", title, Status.WARNING, message, params, facts, item.label)


def apns_topics(item: IdentityInUse, settings: Settings) -> list[str]:
    """The topics this identity pushes to: the pass types it signs (configured and issued)."""
    topics = set(item.pass_type_ids)
    if item.merchant is None:
        topics.add(settings.pass_type_id)
    return sorted(topics)


# ------------------------------------------------------------------ the public URL


def check_public_url(settings: Settings) -> list[Finding]:
    """HTTPS, and its /healthz answers from here."""
    url = settings.public_url.rstrip("/")
    web_service = settings.apple_web_service_url
    facts = {"public_url": url, "web_service_url": web_service}
    found = []
    if urlsplit(url).scheme != "https":
        found.append(
            Finding(
                "public_url.https",
                N_("Public URL is HTTPS"),
                Status.WARNING,
                N_(
                    "WALLETPASS_PUBLIC_URL is %(url)s, not HTTPS: Wallet on a phone only "
                    "registers with an http webServiceURL when its developer setting allows "
                    "it, so real customers' passes never update. Serve it over HTTPS."
                ),
                {"url": url},
                facts,
            )
        )
    else:
        found.append(
            Finding(
                "public_url.https",
                N_("Public URL is HTTPS"),
                Status.OK,
                N_("Passes name %(url)s as their web service, over HTTPS."),
                {"url": web_service},
                facts,
            )
        )
    probe = url + "/healthz"
    facts = {**facts, "probe": probe}
    title = N_("Public URL answers")
    try:
        response = httpx.get(probe, timeout=TIMEOUT_S, follow_redirects=False)
    except httpx.HTTPError as exc:
        found.append(
            Finding(
                "public_url.reachable",
                title,
                Status.ERROR,
                N_(
                    "%(probe)s did not answer from this machine (%(reason)s): phones cannot "
                    "register passes or fetch updates there. Check the DNS name, the TLS "
                    "certificate and the proxy in front of walletpass."
                ),
                {"probe": probe, "reason": f"{type(exc).__name__}: {exc}"},
                facts,
            )
        )
        return found
    facts["answer"] = str(response.status_code)
    ok = response.status_code == 200 and _says_ok(response)
    found.append(
        Finding(
            "public_url.reachable",
            title,
            Status.OK if ok else Status.ERROR,
            N_("%(probe)s answers.")
            if ok
            else N_(
                "%(probe)s answered %(status)s, not walletpass's health answer: the public "
                "URL leads somewhere else. Check the proxy in front of walletpass."
            ),
            {"probe": probe, "status": str(response.status_code)},
            facts,
        )
    )
    return found


def _says_ok(response: httpx.Response) -> bool:
    try:
        return bool(response.json().get("status") == "ok")
    except (ValueError, AttributeError):
        return False


# ------------------------------------------------------------------ Google

_ACCOUNT_FIELDS = ("type", "client_email", "private_key", "private_key_id", "token_uri")


def check_google(settings: Settings, *, network: bool = True) -> list[Finding]:
    """The service-account file and issuer id, then one authenticated call."""
    title = N_("Google Wallet")
    issuer, key_file = settings.google_issuer_id, settings.google_service_account_file
    facts = {"issuer_id": issuer or "", "service_account_file": key_file or ""}
    if not issuer and not key_file:
        return [
            Finding(
                "google",
                title,
                Status.OK,
                N_(
                    "Google Wallet is off (WALLETPASS_GOOGLE_ISSUER_ID and "
                    "WALLETPASS_GOOGLE_SERVICE_ACCOUNT_FILE are not set)."
                ),
                facts=facts,
            )
        ]
    problem = _google_settings_problem(issuer, key_file)
    if problem is not None:
        message, params = problem
        return [Finding("google", title, Status.ERROR, message, params, facts)]
    assert key_file is not None
    facts["client_email"] = str(json.loads(Path(key_file).read_text())["client_email"])
    if not network:
        return [
            Finding(
                "google",
                title,
                Status.OK,
                N_("The service-account file and issuer id %(issuer)s look right."),
                {"issuer": issuer or ""},
                facts,
            )
        ]
    return [_google_call(settings, title, facts)]


def _google_settings_problem(
    issuer: str | None, key_file: str | None
) -> tuple[str, dict[str, str]] | None:
    if not issuer:
        return N_(
            "WALLETPASS_GOOGLE_ISSUER_ID is not set; copy it from the Google Pay & Wallet Console."
        ), {}
    if not issuer.isdigit():
        return (
            N_(
                "WALLETPASS_GOOGLE_ISSUER_ID is %(issuer)s; an issuer id is a number, as the "
                "Google Pay & Wallet Console shows it."
            ),
            {"issuer": issuer},
        )
    if not key_file:
        return N_("WALLETPASS_GOOGLE_SERVICE_ACCOUNT_FILE is not set."), {}
    try:
        info = json.loads(Path(key_file).read_text(encoding="utf-8"))
    except OSError as exc:
        return (
            N_("Cannot read the service-account file %(file)s: %(reason)s"),
            {"file": key_file, "reason": exc.strerror or str(exc)},
        )
    except ValueError:
        return N_("%(file)s is not JSON; download the service account's key as JSON."), {
            "file": key_file
        }
    missing = [name for name in _ACCOUNT_FIELDS if not (isinstance(info, dict) and info.get(name))]
    if missing or info.get("type") != "service_account":
        return (
            N_(
                "%(file)s is not a service-account key (missing: %(missing)s); create a JSON "
                "key for the service account in the Google Cloud console."
            ),
            {"file": key_file, "missing": ", ".join(missing) or "type=service_account"},
        )
    return None


def _google_call(settings: Settings, title: str, facts: dict[str, str]) -> Finding:
    issuer = settings.google_issuer_id or ""
    probe_id = f"{issuer}.walletpass-doctor"
    facts = {**facts, "probe": f"GET {settings.google_api_url}/loyaltyClass/{probe_id}"}
    try:
        with GoogleWalletClient(settings, timeout=(TIMEOUT_S, TIMEOUT_S)) as client:
            client.get("loyaltyClass", probe_id)
    except GoogleNotFound:
        pass  # signed in, and the issuer's classes were searched: what was to be shown
    except (GoogleError, ValueError) as exc:
        facts["answer"] = str(exc)
        reachable = not isinstance(exc, GoogleTransient)
        return Finding(
            "google",
            title,
            Status.ERROR,
            N_(
                "Google refused the service account (%(reason)s). Add its email address "
                "%(email)s as a user of issuer %(issuer)s in the Google Pay & Wallet "
                "Console, and check that its key was not deleted."
            )
            if reachable
            else N_("Google Wallet could not be reached (%(reason)s)."),
            {"reason": str(exc), "email": facts.get("client_email", ""), "issuer": issuer},
            facts,
        )
    return Finding(
        "google",
        title,
        Status.OK,
        N_("The service account signs in and reads issuer %(issuer)s's classes."),
        {"issuer": issuer},
        facts,
    )
