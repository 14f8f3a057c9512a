"""What customers see: join pages, QR codes, flyers, the pass landing page."""
