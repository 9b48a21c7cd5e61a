"""The dashboard: downstream API data fetched with the user's token."""
