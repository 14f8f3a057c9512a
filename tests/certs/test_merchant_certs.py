"""A merchant's own Pass Type ID certificate (issue 22, white label): its passes are signed
with its chain only, pushed on its topic over a connection presenting its certificate, and
a merchant without one keeps the installation's. Two development chains stand in for two
merchants' Apple certificates."""

from __future__ import annotations

import json

import factories
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from merchant_helpers import (
    cms_verifies,
    make_shop,
    new_card,
    pkpass_parts,
    signer_uid,
)
from sqlalchemy import func, select, update
from standins.apns_server import ApnsStandIn

from walletpass.admin.services import reissue_pass
from walletpass.apple.apns import ApnsClient
from walletpass.certs import merchant as merchant_certs
from walletpass.certs.inventory import identities_in_use
from walletpass.certs.models import MerchantCertificate
from walletpass.jobs.models import Job, JobStatus
from walletpass.jobs.worker import Worker
from walletpass.passes.changes import mark_changed
from walletpass.passes.models import Pass
from walletpass.runtime import Runtime

TYPE_A = "pass.com.alpha.loyalty"
TYPE_B = "pass.com.bravo.loyalty"


@pytest.fixture
def shops(runtime, settings, tmp_path):  # type: ignore[no-untyped-def]
    return {
        "a": make_shop(runtime, settings, tmp_path, "alpha", TYPE_A),
        "b": make_shop(runtime, settings, tmp_path, "bravo", TYPE_B),
        "c": make_shop(runtime, settings, tmp_path, "charlie", None),
    }


def _download(client, serial):  # type: ignore[no-untyped-def]
    r = client.get(f"/p/{serial}.pkpass")
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    return r.data


def test_each_merchants_passes_verify_only_against_its_own_chain(
    client, runtime, settings, shops, certs_dir, tmp_path
):
    installation_ca = certs_dir / "ca.pem"
    a, b, c = shops["a"], shops["b"], shops["c"]
    _, serial_a, type_a, _ = new_card(runtime, settings, a)
    _, serial_b, type_b, _ = new_card(runtime, settings, b)
    _, serial_c, type_c, _ = new_card(runtime, settings, c)
    assert (type_a, type_b, type_c) == (TYPE_A, TYPE_B, settings.pass_type_id)

    data_a, data_b, data_c = (_download(client, s) for s in (serial_a, serial_b, serial_c))
    assert cms_verifies(data_a, a.ca_file, tmp_path / "a-a")
    assert not cms_verifies(data_a, b.ca_file, tmp_path / "a-b")
    assert not cms_verifies(data_a, installation_ca, tmp_path / "a-i")
    assert cms_verifies(data_b, b.ca_file, tmp_path / "b-b")
    assert not cms_verifies(data_b, a.ca_file, tmp_path / "b-a")
    assert cms_verifies(data_c, installation_ca, tmp_path / "c-i")
    assert not cms_verifies(data_c, a.ca_file, tmp_path / "c-a")
    assert (signer_uid(data_a), signer_uid(data_b), signer_uid(data_c)) == (
        TYPE_A,
        TYPE_B,
        settings.pass_type_id,
    )
    # pass.json names the merchant's type and team, as Wallet requires of the signer's.
    pass_a = json.loads(pkpass_parts(data_a)["pass.json"])
    assert (pass_a["passTypeIdentifier"], pass_a["teamIdentifier"]) == (TYPE_A, "TEAMALPHA")
    pass_c = json.loads(pkpass_parts(data_c)["pass.json"])
    assert (pass_c["passTypeIdentifier"], pass_c["teamIdentifier"]) == (
        settings.pass_type_id,
        settings.team_id,
    )


def test_passes_issued_before_the_import_keep_the_installations_type_until_reissued(
    client, runtime, settings, tmp_path, certs_dir
):
    shop = make_shop(runtime, settings, tmp_path, "delta", None)
    old_id, old_serial, old_type, _ = new_card(runtime, settings, shop)
    with runtime.transaction() as s:
        _, ca = merchant_certs.install_dev_chain(
            s, settings, shop.merchant_id, "pass.com.delta", "TEAMDELTA", "delta dev"
        )
    ca_file = tmp_path / "delta-ca.pem"
    ca_file.write_bytes(
        ca.public_bytes(
            __import__(
                "cryptography.hazmat.primitives.serialization", fromlist=["Encoding"]
            ).Encoding.PEM
        )
    )
    _, new_serial, new_type, _ = new_card(runtime, settings, shop)
    assert (old_type, new_type) == (settings.pass_type_id, "pass.com.delta")

    old = _download(client, old_serial)
    assert signer_uid(old) == settings.pass_type_id
    assert cms_verifies(old, certs_dir / "ca.pem", tmp_path / "old")
    assert signer_uid(_download(client, new_serial)) == "pass.com.delta"

    # Reissuing moves a pass to the merchant's type: a new pass, with a new serial.
    with runtime.transaction(shop.merchant_id) as s:
        reissued = reissue_pass(s, settings, s.get(Pass, old_id))
        reissued_serial, reissued_type = reissued.serial, reissued.pass_type_id
    assert reissued_type == "pass.com.delta"
    assert cms_verifies(_download(client, reissued_serial), ca_file, tmp_path / "reissued")


def test_the_web_service_serves_and_registers_a_merchants_pass_type(
    client, runtime, settings, shops, tmp_path
):
    _, serial, pass_type, token = new_card(runtime, settings, shops["a"])
    auth = {"Authorization": f"ApplePass {token}"}
    r = client.post(
        f"/apple/v1/devices/lib-a/registrations/{pass_type}/{serial}",
        json={"pushToken": "ab" * 32},
        headers=auth,
    )
    assert r.status_code == 201
    listing = client.get(f"/apple/v1/devices/lib-a/registrations/{pass_type}")
    assert listing.json["serialNumbers"] == [serial]
    fetched = client.get(f"/apple/v1/passes/{pass_type}/{serial}", headers=auth)
    assert fetched.status_code == 200
    assert cms_verifies(fetched.data, shops["a"].ca_file, tmp_path / "ws")
    # The same serial under the installation's type is not this pass.
    other = client.get(f"/apple/v1/passes/{settings.pass_type_id}/{serial}", headers=auth)
    assert other.status_code in (401, 404)


def test_a_replaced_certificate_signs_at_once_and_a_removed_one_only_its_old_passes(
    client, runtime, settings, shops, tmp_path
):
    a = shops["a"]
    pass_id, serial, _, token = new_card(runtime, settings, a)

    def fetch():  # type: ignore[no-untyped-def]
        # The web service's fetch, which keeps the signature on the pass for the next one.
        r = client.get(
            f"/apple/v1/passes/{TYPE_A}/{serial}", headers={"Authorization": f"ApplePass {token}"}
        )
        assert r.status_code == 200
        return r.data

    assert cms_verifies(fetch(), a.ca_file, tmp_path / "first")
    with runtime.transaction() as s:
        assert s.get(Pass, pass_id).signed_version is not None  # kept
    # A renewal: a new certificate of the same type; neither the process cache nor the
    # signature kept on the pass may serve the old one.
    with runtime.transaction() as s:
        _, renewed = merchant_certs.install_dev_chain(
            s, settings, a.merchant_id, TYPE_A, "TEAMALPHA", "alpha renewed"
        )
    renewed_ca = tmp_path / "renewed.pem"
    renewed_ca.write_bytes(
        renewed.public_bytes(
            __import__(
                "cryptography.hazmat.primitives.serialization", fromlist=["Encoding"]
            ).Encoding.PEM
        )
    )
    again = fetch()
    assert cms_verifies(again, renewed_ca, tmp_path / "renewed")
    assert not cms_verifies(again, a.ca_file, tmp_path / "not-old")

    with runtime.transaction() as s:
        assert merchant_certs.remove(s, a.merchant_id)
        assert not merchant_certs.remove(s, a.merchant_id)
    _, new_serial, new_type, _ = new_card(runtime, settings, a)
    assert new_type == settings.pass_type_id
    assert signer_uid(_download(client, new_serial)) == settings.pass_type_id
    # The pass already in wallets keeps its type, so it is still signed with its chain.
    with runtime.transaction() as s:
        mark_changed(s, settings, passes=[pass_id], notify=False)
    assert cms_verifies(_download(client, serial), renewed_ca, tmp_path / "kept")


def test_one_pass_type_belongs_to_one_merchant(runtime, settings, shops):
    with runtime.transaction() as s:
        with pytest.raises(merchant_certs.CertificateError, match="already used by another"):
            merchant_certs.install_dev_chain(
                s, settings, shops["c"].merchant_id, TYPE_A, "TEAMC", "c dev"
            )
        with pytest.raises(merchant_certs.CertificateError, match="installation's own"):
            merchant_certs.install_dev_chain(
                s, settings, shops["c"].merchant_id, settings.pass_type_id, "TEAMC", "c dev"
            )
    with runtime.transaction() as s:
        assert s.scalar(select(func.count()).select_from(MerchantCertificate)) == 2


def test_identities_in_use_lists_the_installation_and_each_merchant(runtime, settings, shops):
    new_card(runtime, settings, shops["a"])
    new_card(runtime, settings, shops["c"])
    with runtime.transaction() as s:
        found = identities_in_use(s, settings)
        summary = [
            (i.owner, i.pass_type_id, i.passes, i.active, i.error, i.identity.pass_type_id)
            for i in found
            if i.identity is not None
        ]
    assert summary == [
        ("installation", settings.pass_type_id, 1, True, None, settings.pass_type_id),
        ("alpha", TYPE_A, 1, True, None, TYPE_A),
        ("bravo", TYPE_B, 0, True, None, TYPE_B),
    ]
    # Another secret key cannot open the stored keys: reported, not raised.
    with runtime.transaction() as s:
        broken = identities_in_use(s, settings.override(secret_key="another-secret"))
    assert [i.error is not None for i in broken] == [False, True, True]
    assert "cannot open the private key" in (broken[1].error or "")


def test_the_private_key_is_stored_sealed_never_in_clear(runtime, settings, shops):
    with runtime.transaction() as s:
        row = s.scalars(
            select(MerchantCertificate).where(MerchantCertificate.pass_type_id == TYPE_A)
        ).one()
        assert b"PRIVATE KEY" not in row.sealed_key
        assert "PRIVATE KEY" not in row.cert_pem + row.intermediate_pem
        identity = merchant_certs.identity_from_row(row, settings.secret_key)
        assert identity.pass_type_id == TYPE_A


# -- pushes ------------------------------------------------------------------------------


@pytest.fixture
def apns_all(apns_pki, certs_dir, shops, tmp_path):  # type: ignore[no-untyped-def]
    """An APNs stand-in trusting the installation's and both merchants' chains, serving
    each certificate's own topic."""
    cas = tmp_path / "client-cas.pem"
    cas.write_bytes(
        b"".join(
            p.read_bytes()
            for p in (
                apns_pki.ca_cert,
                certs_dir / "ca.pem",
                shops["a"].ca_file,
                shops["b"].ca_file,
            )
        )
    )
    standin = ApnsStandIn(cas, apns_pki.server_cert, apns_pki.server_key, topic=None)
    standin.start()
    yield standin
    standin.stop()


def _on_phones(runtime, settings, shops):  # type: ignore[no-untyped-def]
    """One pass of each shop on a phone of its own; their tokens by shop."""
    tokens = {}
    for i, key in enumerate(("a", "b", "c")):
        pass_id, *_ = new_card(runtime, settings, shops[key])
        with runtime.transaction() as s:
            factories.on_phone(s, s.get(Pass, pass_id), f"{i + 1:02x}" * 32)
            mark_changed(s, settings, passes=[pass_id])
        tokens[key] = f"{i + 1:02x}" * 32
    return tokens


def test_pushes_go_out_on_each_certificates_topic_and_connection(
    runtime, settings, shops, apns_all, apns_pki
):
    settings = settings.override(apns_url=apns_all.url, apns_ca_file=str(apns_pki.ca_cert))
    tokens = _on_phones(runtime, settings, shops)
    rt = Runtime.create(settings)
    try:
        Worker(rt, name="w").run_until_idle()
    finally:
        rt.close()
    by_token = {p.token: p for p in apns_all.received}
    assert set(by_token) == set(tokens.values())
    expected = {"a": TYPE_A, "b": TYPE_B, "c": settings.pass_type_id}
    for key, token in tokens.items():
        push = by_token[token]
        assert push.headers["apns-topic"] == expected[key]
        # The connection it came on presented the certificate of that topic.
        assert apns_all.peer_subjects[push.connection - 1]["userId"] == expected[key]
    assert apns_all.connections == 3
    with runtime.transaction() as s:
        assert set(s.scalars(select(Job.status).where(Job.kind == "apple.push"))) == {
            JobStatus.DONE
        }


def test_a_403_pauses_only_that_certificates_pushes(runtime, settings, shops, apns_all, apns_pki):
    settings = settings.override(apns_url=apns_all.url, apns_ca_file=str(apns_pki.ca_cert))
    tokens = _on_phones(runtime, settings, shops)
    apns_all.respond(tokens["a"], 403, "BadCertificate")
    rt = Runtime.create(settings)
    try:
        worker = Worker(rt, name="w")
        worker.run_until_idle()
        with runtime.transaction() as s:
            jobs = {
                j.payload["token"]: j
                for j in s.scalars(select(Job).where(Job.kind == "apple.push"))
            }
            assert jobs[tokens["a"]].status == JobStatus.PENDING
            assert "403" in (jobs[tokens["a"]].last_error or "")
            assert jobs[tokens["b"]].status == JobStatus.DONE
            assert jobs[tokens["c"]].status == JobStatus.DONE
        # B changes again while A is paused: B's push goes out, A's is not even sent.
        with runtime.transaction() as s:
            pass_ids = list(s.scalars(select(Pass.id)))
        with runtime.transaction() as s:
            mark_changed(s, settings, passes=pass_ids)
            s.execute(update(Job).where(Job.status == JobStatus.PENDING).values(run_at=func.now()))
        sent_a = sum(p.token == tokens["a"] for p in apns_all.received)
        worker.run_until_idle()
        assert sum(p.token == tokens["a"] for p in apns_all.received) == sent_a
        assert sum(p.token == tokens["b"] for p in apns_all.received) == 2
    finally:
        rt.close()


def test_the_standin_refuses_a_topic_not_the_certificates(
    shops, apns_all, apns_pki, runtime, settings
):
    with runtime.transaction() as s:
        row = merchant_certs.active_certificate(s, shops["a"].merchant_id)
        identity = merchant_certs.identity_from_row(row, settings.secret_key)
    with ApnsClient(
        base_url=apns_all.url,
        cert=identity.cert_pem,
        key=identity.key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()),
        ca_file=str(apns_pki.ca_cert),
    ) as client:
        ok, refused = client.send_many(TYPE_A, ["aa" * 32]), client.send_many(TYPE_B, ["aa" * 32])
    assert (ok[0].status, refused[0].status, refused[0].reason) == (200, 400, "TopicDisallowed")
