"""The OpenID Connect relying party protocol: provider discovery, the Authlib client, ID and logout token validation."""
