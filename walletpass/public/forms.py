"""The join form: parse and check what a customer typed; no Flask, no database."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from walletpass.i18n.catalogues import N_

# Stored normalised, so that the same number typed two ways finds the same member.
from walletpass.loyalty.models import normalize_phone

# Deliberately loose: the point is catching typos ("name@gmail", "name gmail.com"),
# not enforcing RFC 5322. Confirmation is the only real test of an address.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]{2,}$")
# ?src= and ?ref= values end up in the database and on printed QR codes: keep them tame.
_TOKEN = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")


@dataclass
class JoinForm:
    """The join form's fields; ``errors`` holds English texts marked for the catalogues,
    translated where the page shows them (join.html)."""

    name: str = ""
    email: str = ""
    phone: str = ""
    birthday: str = ""
    marketing_consent: bool = False
    referral_code: str = ""
    source: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    # Parsed values, set by validate().
    birthday_date: date | None = None

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> JoinForm:
        get = form.get
        return cls(
            name=(get("name") or "").strip(),
            email=(get("email") or "").strip(),
            phone=(get("phone") or "").strip(),
            birthday=(get("birthday") or "").strip(),
            # An unticked checkbox is simply absent: consent only when it was ticked.
            marketing_consent=get("marketing_consent") in ("on", "1", "yes", "true"),
            referral_code=(get("referral_code") or "").strip().upper(),
            source=clean_token(get("src")),
        )

    def validate(self, today: date) -> bool:
        errors: dict[str, str] = {}
        if not self.name:
            errors["name"] = N_("Please tell us your name.")
        elif len(self.name) > 200:
            errors["name"] = N_("That name is too long (200 characters at most).")
        if self.email and (len(self.email) > 320 or not _EMAIL.match(self.email)):
            errors["email"] = N_("This does not look like an email address.")
        if self.phone:
            normalized = normalize_phone(self.phone)
            if normalized is None:
                errors["phone"] = N_("Please enter a phone number with 6 to 15 digits.")
            else:
                self.phone = normalized
        if not self.email and not self.phone and "email" not in errors:
            errors["email"] = N_("Please give an email address or a phone number.")
        if self.birthday:
            try:
                self.birthday_date = date.fromisoformat(self.birthday)
            except ValueError:
                errors["birthday"] = N_("Please use the date picker (YYYY-MM-DD).")
            else:
                if self.birthday_date > today:
                    errors["birthday"] = N_("Your birthday cannot be in the future.")
                elif self.birthday_date.year < 1900:
                    errors["birthday"] = N_("Please check the year.")
        if self.referral_code and not _TOKEN.match(self.referral_code):
            errors["referral_code"] = N_("This referral code is not valid.")
        self.errors = errors
        return not errors


def clean_token(value: object) -> str:
    """A ``?src=`` / ``?ref=`` value if it is short and plain, else empty."""
    text = str(value or "").strip()
    return text if _TOKEN.match(text) else ""
