"""Unit tests of the OpenID Connect relying party (oidc/)."""
