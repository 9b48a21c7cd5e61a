"""Sign-in and sign-out: /login, /auth/callback, /logout."""
