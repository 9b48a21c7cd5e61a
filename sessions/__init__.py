"""Server-side sessions: the Redis store, the session hooks and the signed-in user's data."""
