"""The accounts flows: persisting users, profile edits, deletion, disable and enable."""
