"""Flask CLI commands (`flask --app app …`)."""
