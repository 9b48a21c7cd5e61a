"""The audit trail: security events recorded durably in SQL through the job queue."""
