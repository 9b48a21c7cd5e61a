"""`GET /metrics`: Prometheus text format, answered only to the client addresses METRICS_ALLOWED_NETWORKS lists.

Any other client gets the app's plain 404, as for a path that does not exist. The
address is the one the app already trusts: the direct peer, or, with PROXY_FIX_HOPS set,
the one ProxyFix takes from that many proxies' X-Forwarded-For (never a value the client
wrote itself). The view never touches the session (nothing is stored, no cookie is
set), needs no CSRF token, and its answer is never cached.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, request

import metrics
from extensions import csrf
from jobs.status import job_counts
from metrics.exposition import CONTENT_TYPE, address_allowed, render

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
@csrf.exempt
def scrape() -> Response:
    """Every process's counters and histograms, and the job counts read now (allowed addresses only)."""
    if not address_allowed(request.remote_addr, current_app.config["METRICS_ALLOWED_NETWORKS"]):
        abort(404)
    metrics.initialise_series()
    response = Response(render(job_counts), content_type=CONTENT_TYPE)
    response.headers["Cache-Control"] = "no-store"
    return response
