"""/merchant/certificate: the merchant's own Pass Type ID certificate (issue 22).

Upload a .p12 with its password (multipart/form-data); every check of `walletpass certs
import` applies and a refusal is a 422 naming the reason. The private key never leaves:
GET shows only the certificate.
"""

from __future__ import annotations

from datetime import datetime

from flask import request
from pydantic import BaseModel

from walletpass import errors
from walletpass.api.framework import Context, Routes
from walletpass.certs import merchant as merchant_certs
from walletpass.certs.models import MerchantCertificate
from walletpass.passes.signing import CertificateError

routes = Routes()

# A Pass Type ID .p12 is a few kilobytes; anything far larger is not one.
MAX_P12_BYTES = 64 * 1024


class CertificateOut(BaseModel):
    subject: str
    pass_type_id: str
    team_id: str | None
    not_after: datetime
    fingerprint: str
    created_at: datetime


def _out(row: MerchantCertificate) -> CertificateOut:
    return CertificateOut(
        subject=row.subject,
        pass_type_id=row.pass_type_id,
        team_id=row.team_id,
        not_after=row.not_after,
        fingerprint=row.fingerprint,
        created_at=row.created_at,
    )


_UPLOAD = {
    "type": "object",
    "required": ["p12"],
    "properties": {
        "p12": {
            "type": "string",
            "format": "binary",
            "description": "The Pass Type ID certificate with its private key (.p12).",
        },
        "password": {"type": "string", "description": "The .p12's password."},
    },
}


@routes.operation(
    "GET",
    "/merchant/certificate",
    scopes=("admin",),
    response=CertificateOut,
    tag="merchant",
    problems=(errors.NotFound,),
)
def get_certificate(ctx: Context) -> CertificateOut:
    """The merchant's own certificate, which signs its new passes.

    404 when it has none: the installation's certificate signs its passes.
    """
    row = merchant_certs.active_certificate(ctx.session, ctx.merchant_id)
    if row is None:
        raise errors.NotFound(
            "this merchant has no certificate of its own; the installation's signs its passes"
        )
    return _out(row)


@routes.operation(
    "POST",
    "/merchant/certificate",
    scopes=("admin",),
    response=CertificateOut,
    status=201,
    tag="merchant",
    form=_UPLOAD,
    problems=(errors.CertificateRefused,),
)
def put_certificate(ctx: Context) -> CertificateOut:
    """Import the merchant's own Pass Type ID certificate (.p12 and its password).

    Its new passes are then issued with its pass type and signed with it; passes issued
    before keep the type they have (Apple keys a pass by type and serial) until reissued.
    Refused with 422 for a wrong password, an expired or not yet valid certificate, one
    that is not a Pass Type ID certificate, a key that does not match, a missing WWDR
    intermediate, or a pass type another merchant or the installation uses.
    """
    upload = request.files.get("p12")
    if upload is None:
        raise errors.ValidationFailed(
            "send the .p12 as the multipart field p12",
            errors=[{"field": "body.p12", "message": "missing"}],
        )
    data = upload.stream.read(MAX_P12_BYTES + 1)
    if len(data) > MAX_P12_BYTES:
        raise errors.CertificateRefused("that file is too large to be a .p12")
    password = request.form.get("password", "")
    try:
        row = merchant_certs.import_p12(
            ctx.session,
            ctx.settings,
            ctx.merchant_id,
            data,
            password.encode("utf-8") or None,
            name=_name(upload.filename),
        )
    except CertificateError as exc:
        raise errors.CertificateRefused(str(exc)) from None
    return _out(row)


@routes.operation(
    "DELETE",
    "/merchant/certificate",
    scopes=("admin",),
    status=204,
    tag="merchant",
    problems=(errors.NotFound,),
)
def delete_certificate(ctx: Context) -> None:
    """Sign the merchant's new passes with the installation's certificate again.

    Passes issued under the merchant's pass type keep being signed with its certificate.
    """
    if not merchant_certs.remove(ctx.session, ctx.merchant_id):
        raise errors.NotFound("this merchant has no certificate of its own")


def _name(filename: str | None) -> str:
    # Only for messages; a client's file name is not a path here.
    name = (filename or "").replace("/", "_").replace("\\", "_").strip()
    return name[:100] or "the .p12"
