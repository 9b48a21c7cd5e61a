"""The signed-in user's profile: /profile."""
