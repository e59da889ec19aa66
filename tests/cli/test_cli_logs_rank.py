"""``procplan logs ID --rank N``: a multi-node job's node (issue #19)."""

from __future__ import annotations

from tests.cli.test_cli_nodes import log_server, logs_cli

__all__ = ["log_server", "logs_cli"]  # the fixtures


def test_logs_rank_asks_for_that_nodes_log(logs_cli, log_server):
    log_server.logs["17"] = bytearray(b"rank 1\n")
    log_server.states["17"] = "running"
    result = logs_cli("17", "--rank", "1")
    assert (result.exit_code, result.stdout) == (0, "rank 1\n")
    assert log_server.queries[0]["rank"] == ["1"]


def test_logs_without_rank_sends_none(logs_cli, log_server):
    log_server.logs["17"] = bytearray(b"x\n")
    log_server.states["17"] = "completed"
    assert logs_cli("17").exit_code == 0
    assert "rank" not in log_server.queries[0]
