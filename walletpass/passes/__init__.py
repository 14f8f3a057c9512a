"""Wallet passes: templates, rendering, bundling and signing."""
