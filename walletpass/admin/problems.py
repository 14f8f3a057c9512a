"""What each of Wallet's known problems means and what to do about it, for the admin's
"Wallet problems" page: one entry per pattern key of walletpass.apple.problems.

Texts are marked here (the ``admin`` catalogue) and translated where the page shows them.
Wallet's own messages stay in English on the page, as Wallet wrote them.
"""

from __future__ import annotations

from dataclasses import dataclass

from walletpass.i18n.catalogues import N_


@dataclass(frozen=True)
class Explanation:
    title: str
    meaning: str
    fix: str


CATALOGUE: dict[str, Explanation] = {
    "trust-chain": Explanation(
        N_("The pass's signature or certificate was refused"),
        N_(
            "Wallet could not verify the pass: its pass type or team does not match the "
            "signing certificate, or the certificate chain (Apple's WWDR intermediate) is "
            "wrong. The pass does not open or does not update."
        ),
        N_(
            "Run `walletpass pass lint` on the pass: it names the mismatch. Check that the "
            "imported Pass Type ID certificate is Apple's and current."
        ),
    ),
    "signing-date": Explanation(
        N_("The signature has no signing date"),
        N_("Wallet refuses a pass whose signature carries no signing time."),
        N_("The pass was signed with the wrong options; re-sign it with walletpass."),
    ),
    "manifest-entry": Explanation(
        N_("A file of the pass is not in its manifest"),
        N_("The pass bundle holds a file its manifest does not list, or lists one wrongly."),
        N_(
            "Remove stray files (such as .DS_Store) from the design's folder, then run "
            "`walletpass pass lint` on the design."
        ),
    ),
    "last-modified": Explanation(
        N_("The pass was sent without a Last-Modified date"),
        N_(
            "Wallet fetched the pass but the answer had no Last-Modified header, so it "
            "cannot tell whether later fetches are newer."
        ),
        N_(
            "walletpass always sends it; a proxy or CDN in front of the service removes "
            "it. Let the header through."
        ),
    ),
    "invalid-data": Explanation(
        N_("Wallet could not read the pass"),
        N_("The pass file Wallet downloaded is invalid, so the phone kept the old pass."),
        N_("Run `walletpass pass lint` on the pass (download it from the card page)."),
    ),
    "not-found": Explanation(
        N_("Wallet asked for a pass that is not here"),
        N_(
            "A phone holds a pass this service does not know (deleted, or from another "
            "installation). It stops asking after a while."
        ),
        N_("Nothing, unless the pass should exist: then check that it was not deleted."),
    ),
    "unauthorized": Explanation(
        N_("The web service refused the phone's token (401)"),
        N_(
            "The phone's pass carries an authentication token the service does not accept, "
            "so the pass stops updating."
        ),
        N_(
            "A pass's token never changes; if passes were re-issued with new tokens, "
            "members must add the pass again from their card page."
        ),
    ),
    "authentication-token": Explanation(
        N_("Problem with the pass's authentication token"),
        N_("Wallet rejected the pass's authenticationToken (it needs 16 characters or more)."),
        N_("Run `walletpass pass lint` on the pass."),
    ),
    "unchanged": Explanation(
        N_("An update was announced but the pass had not changed"),
        N_(
            "The service told the phone a pass changed, then sent the same pass. Harmless, "
            "but it costs the phone a download."
        ),
        N_("Nothing to do if it is rare; if frequent, report it as a bug."),
    ),
    "if-modified-since": Explanation(
        N_("The full pass was sent although nothing changed"),
        N_("The service ignored the phone's If-Modified-Since header and sent the pass again."),
        N_("A proxy or CDN in front of the service may drop the header: let it through."),
    ),
    "last-updated": Explanation(
        N_("The list of changed passes did not advance"),
        N_(
            "The phone asked what changed and got serial numbers, but the same lastUpdated "
            "tag as before, so it will ask again."
        ),
        N_("Report it as a bug, with the example message."),
    ),
    "malformed": Explanation(
        N_("Wallet could not understand the service's answer"),
        N_("The answer to a phone's request was not what Wallet expects."),
        N_("A proxy, firewall or login page in front of the service may change answers."),
    ),
    "server-error": Explanation(
        N_("The web service answered with an error (5xx)"),
        N_("The phone's request failed on the server; Wallet retries later."),
        N_("Check the service's logs around the time shown."),
    ),
    "web-service-url": Explanation(
        N_("The web service address is refused"),
        N_("Wallet refuses a web service that is not on HTTPS: passes never update."),
        N_("Serve walletpass over HTTPS and set WALLETPASS_PUBLIC_URL to the https:// address."),
    ),
    "apns-unregistered": Explanation(
        N_("A phone no longer has the pass (APNs 410)"),
        N_("Apple says the device removed the pass or its push token expired."),
        N_("Nothing: walletpass forgets that device's registration."),
    ),
    "apns-bad-token": Explanation(
        N_("Apple rejected a push token (400 BadDeviceToken)"),
        N_("The token is malformed or for the sandbox environment."),
        N_("Nothing: walletpass forgets the token. Many of these point to a sandbox APNs URL."),
    ),
    "apns-topic": Explanation(
        N_("Apple refused the pass type as push topic"),
        N_(
            "The push certificate is not allowed to push to this pass type (TopicDisallowed, "
            "DeviceTokenNotForTopic, BadTopic): updates do not reach phones."
        ),
        N_("Push with the same Pass Type ID certificate that signs the passes."),
    ),
    "apns-certificate": Explanation(
        N_("Apple refused the push certificate (403)"),
        N_(
            "The Pass Type ID certificate is expired, revoked or not Apple's: no update "
            "reaches any phone; pushes pause and retry."
        ),
        N_("Renew the certificate in Apple's developer account and import it again."),
    ),
    "apns-unavailable": Explanation(
        N_("Apple's push service was busy or unreachable"),
        N_("APNs answered 429 or 5xx, or did not answer; the pushes are retried."),
        N_("Nothing, unless it persists: then check the network path to Apple."),
    ),
    "apns-refused": Explanation(
        N_("Apple refused pushes for another reason"),
        N_("APNs answered with an error walletpass does not retry."),
        N_("See the example message for Apple's reason."),
    ),
}
