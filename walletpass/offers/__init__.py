"""Offers and the coupons issued from them."""
