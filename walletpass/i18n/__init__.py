"""Languages, gettext catalogues and locale-aware formatting, for every text we write.

Flask-free (the domain core writes pass fields and messages in a member's language from
the worker); the pages' side, Flask-Babel and the locale choice, is ``walletpass.web.i18n``.
"""
