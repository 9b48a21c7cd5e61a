"""The journeys every Redis topology carries (tests/integration/topology_journeys.py), on one Redis server.

tests/integration/test_sentinel.py and test_cluster.py run the same journeys on a Sentinel group and a
Redis Cluster, with the provider whose keys the tests hold (so they can post logout tokens of their own).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.topology_journeys import (  # noqa: F401  (the shared journeys, collected and run here)
    Topology,
    running_topology,
    test_back_channel_logout_by_sid_ends_only_that_provider_session,
    test_back_channel_logout_by_sub_ends_the_user_s_earlier_sessions,
    test_disable_and_deletion,
    test_parallel_requests_refresh_an_expired_token_once,
    test_sign_in_profile_edits_and_revocation,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    """A stack on one redis-server (a web process, a worker), signing in through a provider the tests drive."""
    with running_topology("standalone", tmp_path_factory.mktemp("standalone")) as topology:
        yield topology
