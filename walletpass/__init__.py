"""walletpass."""
