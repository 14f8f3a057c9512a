"""The /till page: staff scan passes with a phone camera or a USB scanner."""
