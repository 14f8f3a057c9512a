"""A merchant's own Pass Type ID certificate (white label), stored in the database.

The certificate and its intermediate are public; the private key is kept only sealed with
WALLETPASS_SECRET_KEY (walletpass.security.seal). A replaced or removed certificate stays
as an inactive row: passes already in wallets carry its pass type identifier, which can
never change, and are signed and pushed with it until they are reissued.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, LargeBinary, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from walletpass.db import Base, MerchantOwned, created_at, int_pk


class MerchantCertificate(MerchantOwned, Base):
    __tablename__ = "merchant_certificates"
    __table_args__ = (
        # At most one certificate signs a merchant's new passes.
        Index(
            "uq_merchant_certificates_active",
            "merchant_id",
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
        # The pushes and the inventory look a certificate up by the type it signs.
        Index("ix_merchant_certificates_pass_type_id", "pass_type_id"),
    )
    merchant_id_indexed = False  # the unique index above starts with it

    id: Mapped[int_pk]
    pass_type_id: Mapped[str] = mapped_column(String(128))
    team_id: Mapped[str | None] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(1000))
    cert_pem: Mapped[str] = mapped_column(Text)
    intermediate_pem: Mapped[str] = mapped_column(Text)
    # PKCS#8 PEM sealed with walletpass.security.seal; never stored or logged in clear.
    sealed_key: Mapped[bytes] = mapped_column(LargeBinary)
    not_after: Mapped[datetime]
    # SHA-256 of the certificate's DER, hex: names it in caches and APNs connections.
    fingerprint: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[created_at]
    removed_at: Mapped[datetime | None]
