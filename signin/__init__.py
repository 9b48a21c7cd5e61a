"""The sign-in flow: start, callback, re-authentication, back-channel logout and sign-out."""
