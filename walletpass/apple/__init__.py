"""Apple Wallet: the PassKit web service and APNs pushes."""
