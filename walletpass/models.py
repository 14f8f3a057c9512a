"""Imports every model module so that Base.metadata is complete (Alembic, tests)."""

from walletpass.apple.models import AppleLog, Device, Registration
from walletpass.campaigns.models import Campaign, CampaignRecipient
from walletpass.certs.models import MerchantCertificate
from walletpass.crm.models import (
    IdempotencyRecord,
    InboundEvent,
    InboundSource,
    WebhookDelivery,
    WebhookEndpoint,
)
from walletpass.db import Base
from walletpass.google.models import GoogleCallbackNonce, GoogleNotification
from walletpass.health.models import CertificateWarning
from walletpass.jobs.models import Job, PushPace
from walletpass.loyalty.models import LedgerEntry, Member, Program, Reward, RewardRedemption
from walletpass.mail.models import CardEmail
from walletpass.offers.models import Coupon, Offer
from walletpass.passes.models import ChangeCounter, Pass, PassEvent
from walletpass.scan.models import Scan
from walletpass.tenancy.models import ApiKey, Merchant, Store, User

__all__ = [
    "ApiKey",
    "AppleLog",
    "Base",
    "Campaign",
    "CampaignRecipient",
    "CardEmail",
    "CertificateWarning",
    "ChangeCounter",
    "Coupon",
    "Device",
    "GoogleCallbackNonce",
    "GoogleNotification",
    "IdempotencyRecord",
    "InboundEvent",
    "InboundSource",
    "Job",
    "LedgerEntry",
    "Member",
    "Merchant",
    "MerchantCertificate",
    "Offer",
    "Pass",
    "PassEvent",
    "Program",
    "PushPace",
    "Registration",
    "Reward",
    "RewardRedemption",
    "Scan",
    "Store",
    "User",
    "WebhookDelivery",
    "WebhookEndpoint",
]
