"""The accounts flows' jobs (jobs/registry.py), with the paths they were queued under before 2026-12."""

from __future__ import annotations

from accounts.deletion import delete_user_row
from accounts.identities import link_identity, unlink_identity
from accounts.moves import move_account
from accounts.persistence import persist_user, persist_user_status, persist_users
from jobs.registry import JobSpec

ACCOUNT_JOBS = (
    JobSpec(persist_user, batch=persist_users, former_names=("jobs.users.persist_user",), measured=True),
    JobSpec(persist_user_status, former_names=("jobs.users.persist_user_status",)),
    JobSpec(delete_user_row, former_names=("jobs.accounts.delete_user_row",)),
    JobSpec(link_identity),
    JobSpec(unlink_identity),
    JobSpec(move_account),
)
