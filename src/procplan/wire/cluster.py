"""Cluster-wide answers: ``/health`` and the Go scheduler's ``/api/v1/cluster/status``
(COMPAT.md §3)."""

from __future__ import annotations

from procplan.core.views import ClusterCounts
from procplan.wire.base import Json

__all__ = ["cluster_status", "healthy"]


def healthy() -> Json:
    """``/health`` when the database answers (a 503 error otherwise)."""
    return {"status": "healthy"}


def cluster_status(counts: ClusterCounts, offline_nodes: int) -> Json:
    """The Go scheduler's totals, in its key order (``counts``, from
    ``JobService.cluster_status``), with the nodes whose agent stopped reporting taken out
    of ``online_nodes``."""
    return {
        "total_gpus": counts.total_gpus,
        "available_gpus": counts.available_gpus,
        "total_nodes": counts.total_nodes,
        "online_nodes": counts.online_nodes - offline_nodes,
        "total_jobs": counts.total_jobs,
        "pending_jobs": counts.pending_jobs,
        "running_jobs": counts.running_jobs,
    }
