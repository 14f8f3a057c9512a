"""Whether this installation can do what Wallet needs: the checks behind `walletpass doctor`,
the admin's Health page, the certificate gauges of /metrics and the expiry warning emails.

``checks`` looks at the signing certificates and their chain, ``probes`` makes the calls a
real iPhone's path depends on (APNs, the public URL, Google), ``expiry`` says when each
certificate runs out, ``warnings`` emails the merchants' owners before it does. No Flask
here: the CLI, the admin and /metrics call these modules.
"""
