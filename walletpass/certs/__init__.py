"""Signing certificates: a local development chain and import of real Pass Type ID .p12 files."""
