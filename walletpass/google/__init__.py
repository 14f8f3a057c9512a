"""Google Wallet: classes, objects, save links, notifications and callbacks."""
