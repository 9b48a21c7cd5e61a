"""The user: who they are (identity claims), what they chose (profile), and their state shared by all sessions."""
