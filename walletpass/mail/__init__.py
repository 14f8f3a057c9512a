"""Card emails: the link to a member's card page and its QR code, in the member's language.

``services`` queues one (the row and its outbox job, in the caller's transaction),
``jobs`` sends it through ``smtp`` (WALLETPASS_SMTP_URL), ``message`` composes it.
No Flask here: the join page, the till, the admin and the API call ``services``.
"""
