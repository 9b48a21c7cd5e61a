"""Integration tests: real Redis, the real OpenID provider, a worker process and gunicorn."""
