"""Imports every module that registers job handlers."""

import importlib

HANDLER_MODULES = (
    "walletpass.apple.push",
    "walletpass.google.sync",
    "walletpass.loyalty.sweeps",
    "walletpass.campaigns.jobs",
    "walletpass.admin.imports",
    "walletpass.crm.outbound",
)

for _name in HANDLER_MODULES:
    importlib.import_module(_name)
