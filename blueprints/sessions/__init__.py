"""The signed-in user's devices: /sessions."""
