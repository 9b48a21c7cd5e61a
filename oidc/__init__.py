"""The OpenID Connect relying party: provider discovery, ID token validation, token refresh."""
