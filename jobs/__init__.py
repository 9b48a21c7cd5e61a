"""Background jobs run by the RQ worker (`flask --app app worker`)."""
