"""sessions.store.merge_session: the key-by-key merge behind compare-and-set session writes."""

from __future__ import annotations

import pytest

from sessions.store import merge_session

pytestmark = pytest.mark.integration  # part of the reliability suite (it needs no server, though)

BASE = {"user": {"subject": "a"}, "profile": {"display_name": "Old", "version": 1}, "csrf_token": "t"}


def test_changes_to_different_keys_are_all_kept() -> None:
    mine = {**BASE, "profile": {"display_name": "Mine", "version": 2}}
    theirs = {**BASE, "_login_state_x": {"data": 1}}
    assert merge_session(BASE, mine, theirs) == {**mine, "_login_state_x": {"data": 1}}


def test_two_requests_adding_their_own_keys_keep_both() -> None:
    mine = {**BASE, "_login_state_a": {"data": "a"}}
    theirs = {**BASE, "_login_state_b": {"data": "b"}}
    merged = merge_session(BASE, mine, theirs)
    assert merged["_login_state_a"] == {"data": "a"}
    assert merged["_login_state_b"] == {"data": "b"}


def test_keys_this_request_did_not_touch_take_the_stored_value() -> None:
    theirs = {**BASE, "tokens": {"access_token": "refreshed"}, "csrf_token": "t2"}
    assert merge_session(BASE, dict(BASE), theirs) == theirs


def test_of_two_versioned_values_the_newer_wins_whoever_writes_last() -> None:
    mine = {**BASE, "profile": {"display_name": "Older edit", "version": 5}}
    theirs = {**BASE, "profile": {"display_name": "Newer edit", "version": 9}}
    assert merge_session(BASE, mine, theirs)["profile"]["display_name"] == "Newer edit"
    assert merge_session(BASE, theirs, mine)["profile"]["display_name"] == "Newer edit"


def test_unversioned_conflicts_go_to_the_request_writing_now() -> None:
    mine, theirs = {**BASE, "csrf_token": "mine"}, {**BASE, "csrf_token": "theirs"}
    assert merge_session(BASE, mine, theirs)["csrf_token"] == "mine"


def test_a_removal_applies_only_if_the_other_request_left_the_key_alone() -> None:
    base = {**BASE, "_flashes": [["success", "Saved"]], "_login_state_a": {"data": "a"}}
    mine = {key: value for key, value in base.items() if key not in ("_flashes", "_login_state_a")}
    theirs = {**base, "_flashes": [["success", "Saved"], ["info", "Another"]]}
    merged = merge_session(base, mine, theirs)
    assert "_login_state_a" not in merged  # popped here, untouched there: gone
    assert merged["_flashes"] == [["success", "Saved"], ["info", "Another"]]  # changed there: kept


def test_a_key_set_here_survives_its_removal_there() -> None:
    mine = {**BASE, "profile": {"display_name": "Mine", "version": 2}}
    theirs = {key: value for key, value in BASE.items() if key != "profile"}
    assert merge_session(BASE, mine, theirs)["profile"] == {"display_name": "Mine", "version": 2}
