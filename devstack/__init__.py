"""The embedded default: everything `make run` starts on one laptop, and the helpers tests share."""
