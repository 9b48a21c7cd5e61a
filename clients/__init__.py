"""Clients for services Gatehouse calls on the user's behalf."""
