"""procplan-cli end to end against a canned server: outputs and exit codes of ProcPlan."""

from __future__ import annotations

import socket

import pytest

from procplan.cli import compat_cli
from procplan.cli.weektable import no_match_message, render_week_table

NODES = {
    "nodes": [
        {"id": "node-a", "name": "Training Node A", "gpu_count": 2, "gpus": []},
        {"id": "node-b", "name": "Node B", "gpu_count": 0, "gpus": []},
    ]
}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = compat_cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_unreachable_server_exits_1(dead_url, capsys):
    code, out, err = run(capsys, "--url", dead_url, "--all")
    assert code == 1
    assert out == ""
    assert err.startswith("Failed to contact server: ")


def test_invalid_json_exits_1(fake_server, capsys):
    fake_server.add("GET", "/api/nodes", 200, b"not json")
    code, _, err = run(capsys, "--url", fake_server.url, "--all")
    assert (code, err) == (1, "Server returned invalid JSON while listing nodes.\n")


def test_bad_date_exits_1_before_any_request(fake_server, capsys):
    code, _, err = run(capsys, "--url", fake_server.url, "--date", "24-06-01")
    assert (code, err) == (1, "Invalid --date value, expected YYYY-MM-DD\n")
    assert fake_server.requests == []


def test_no_matching_node_exits_1(fake_server, capsys):
    fake_server.add("GET", "/api/nodes", 200, NODES)
    code, _, err = run(capsys, "--url", fake_server.url, "--node", "zz", "--node", "aa")
    assert code == 1
    assert err == "No matching nodes found for filter(s): aa, zz. Use --all to list every node.\n"


def test_default_filter_is_the_host_name(fake_server, capsys):
    fake_server.add("GET", "/api/nodes", 200, NODES)
    code, _, err = run(capsys, "--url", fake_server.url)
    assert code == 1
    assert err == no_match_message({socket.gethostname()}) + "\n"


def test_all_nodes_report_in_server_order(fake_server, capsys, make_day_payload, booking):
    payload = make_day_payload({"node-a-gpu0": {0: [booking("AB", "high")]}}, days=1)
    fake_server.add("GET", "/api/nodes", 200, NODES)
    fake_server.add("GET", "/api/availability", 200, payload)
    code, out, err = run(capsys, "--url", fake_server.url + "/", "-a", "--date", "2026-11-23")
    assert (code, err) == (0, "")
    table = render_week_table(payload)
    assert out == table + "\n" + table
    queries = [r.query for r in fake_server.calls("GET", "/api/availability")]
    assert [q["node_id"] for q in queries] == [["node-a"], ["node-b"]]
    assert queries[0]["start"] == ["2026-11-23T00:00:00+00:00"]
    assert queries[0]["end"] == ["2026-11-24T00:00:00+00:00"]
    assert queries[0]["granularity"] == ["day"]


def test_failed_node_is_reported_and_others_still_print(fake_server, capsys, make_day_payload):
    fake_server.add("GET", "/api/nodes", 200, {"nodes": [{"id": "node-a"}, {"id": "ghost"}]})
    fake_server.add("GET", "/api/availability", 200, b"{broken")
    code, out, err = run(capsys, "--url", fake_server.url, "--node", "node-a")
    assert (code, out) == (1, "")
    assert err == "Invalid JSON for node node-a availability.\n"


def test_url_is_required(capsys):
    with pytest.raises(SystemExit) as info:
        compat_cli.main(["--all"])
    assert info.value.code == 2
