"""What a failed sign-in may tell the user: a fixed text for each kind of failure.

The kind travels in the URL of the error page (/auth/failed?reason=<kind>), so only these
fixed texts can show; it is also the `result` label of the sign-in metric.
"""

from __future__ import annotations

GENERIC_FAILURE = "We could not sign you in. Please try again."
PROVIDER_UNAVAILABLE = "The sign-in provider is unavailable right now. Please try again later."
# The provider a session signed in with was removed from the settings since.
PROVIDER_GONE = "The provider you signed in with is no longer available here. Please sign out and sign in again."

# What a failed sign-in may tell the user, by kind.
FAILURE_MESSAGES = {
    "failed": GENERIC_FAILURE,
    "unavailable": PROVIDER_UNAVAILABLE,
    "expired": "This sign-in link has expired or was already used. Please sign in again.",
    "disabled": "This account has been disabled. Please contact your administrator.",
    "provider_signed_out": "The sign-in provider signed you out while you were signing in here. Please sign in again.",
    # Provider error codes we can explain; any other is "failed".
    "access_denied": "You declined to sign in, so you are not signed in.",
    "login_required": "The sign-in provider needs you to sign in there first.",
    "consent_required": "The sign-in provider needs your consent first.",
    "interaction_required": "The sign-in provider needs you to finish signing in there.",
    # Re-authentication for a sensitive action (signin/reauth.py); the user stays signed in.
    "reauth_stale": "The sign-in provider did not confirm that you signed in again just now, so the action was not "
    "done. You are still signed in; to try again, go back and repeat the action.",
    "reauth_other_user": "You signed in at the provider as someone else, so the action was not done. You are still "
    "signed in as before.",
    "reauth_signed_out": "Your session ended while you were confirming it was you. Please sign in again.",
    # Linking another provider's sign-in into the account (signin/linking.py); the user stays signed in.
    "link_taken": "That sign-in already belongs to another account here, so it was not linked. You are still "
    "signed in as before.",
    "link_provider_taken": "Your account already has a sign-in at that provider, so nothing was linked.",
    "link_signed_out": "Your session ended while you were linking a sign-in. Please sign in again.",
    "link_unavailable": "Linking is not possible right now. Please try again later.",
    # A first sign-in at a provider trusted for e-mail could not ask whose its address is (signin/email_linking.py).
    "email_link_unavailable": "Signing in is not possible right now. Please try again in a minute.",
}


class LoginFailed(Exception):
    """Sign-in cannot complete; `kind` picks the message shown, `reason` is for the log."""

    def __init__(self, kind: str, reason: str):
        super().__init__(reason)
        self.kind = kind if kind in FAILURE_MESSAGES else "failed"
        self.reason = reason

    @property
    def message(self) -> str:
        """The text safe to show the user."""
        return failure_message(self.kind)


def failure_message(kind: str) -> str:
    """The fixed text for a kind of sign-in failure (unknown kinds get the generic one)."""
    return FAILURE_MESSAGES.get(kind, GENERIC_FAILURE)
