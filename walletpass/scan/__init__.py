"""The till: scans of passes and coupons."""
