"""The job functions Gatehouse runs, by name: the only ones a queued job or an outbox row may name.

RQ imports and calls whatever function a job names, so anyone able to write to the
queue's Redis could otherwise run any function of any installed module.
"""

JOB_FUNCTIONS = frozenset(
    {
        "jobs.users.persist_user",
        "jobs.users.persist_user_status",
        "jobs.accounts.delete_user_row",
        "jobs.audit.store_audit_event",
    }
)
