"""The marketer's /admin: programs, designs, offers, campaigns, members, KPIs."""
