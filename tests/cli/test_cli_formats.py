"""Issue #17: every listing command prints ``--json`` (the server's answer) and, where it
draws a table, ``--format csv`` (the table's columns), against a canned server."""

from __future__ import annotations

import csv
import io
import json

BOOKING = {
    "id": 7,
    "node_id": "node-a",
    "gpu_ids": ["node-a-gpu0", "node-a-gpu1"],
    "start": "2026-11-24T09:00:00+00:00",
    "end": "2026-11-24T11:00:00+00:00",
    "user": "alice",
    "label": "A,B",
    "priority": "high",
    "status": "active",
}
TENANT = {"name": "vision", "max_gpus": 8, "current_gpus": 3, "members": ["alice"]}


def test_bookings_json_is_the_servers_page(cli, fake_server):
    page = {"bookings": [BOOKING], "total": 1}
    fake_server.add("GET", "/api/v1/bookings", 200, page)
    result = cli("bookings", "--all", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == page
    same = cli("bookings", "--all", "--format", "json")
    assert json.loads(same.stdout) == page


def test_bookings_csv_has_the_table_columns(cli, fake_server):
    fake_server.add("GET", "/api/v1/bookings", 200, {"bookings": [BOOKING], "total": 1})
    result = cli("--tz", "Europe/Berlin", "bookings", "--all", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["ID", "Node", "GPUs", "Start", "End", "User", "Label", "Priority", "Status"]
    assert rows[1] == [
        "7", "node-a", "node-a-gpu0, node-a-gpu1", "2026-11-24 10:00", "2026-11-24 12:00",
        "alice", "A,B", "high", "active",
    ]  # fmt: skip


def test_json_and_another_format_conflict(cli, fake_server):
    result = cli("bookings", "--json", "--format", "csv")
    assert result.exit_code == 2
    assert fake_server.requests == []


def test_tenant_list_and_show_json_and_csv(cli, fake_server):
    fake_server.add("GET", "/api/v1/tenants", 200, {"tenants": [TENANT]})
    fake_server.add("GET", "/api/v1/tenants/vision", 200, TENANT)
    listed = cli("tenant", "list", "--json")
    assert (listed.exit_code, json.loads(listed.stdout)) == (0, [TENANT])
    shown = cli("tenant", "show", "vision", "--json")
    assert (shown.exit_code, json.loads(shown.stdout)) == (0, TENANT)
    table = list(csv.reader(io.StringIO(cli("tenant", "list", "--format", "csv").stdout)))
    assert table[0][:2] == ["TENANT", "GPUS"] and table[1][:2] == ["vision", "3/8"]


def test_calendar_json_is_the_availability_answers(cli, fake_server):
    node = {"id": "node-a", "name": "A", "gpus": [{"id": "node-a-gpu0", "kind": "A100"}]}
    payload = {"node": "node-a", "gpus": ["node-a-gpu0"], "slots": []}
    fake_server.add("GET", "/api/nodes", 200, {"nodes": [node]})
    fake_server.add("POST", "/api/availability_bulk", 200, {"availability": [payload]})
    result = cli("calendar", "--all", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [payload]


def test_queue_csv(cli, fake_server):
    job = {"id": "17", "user": "alice", "state": "running", "gpu_count": 2, "name": "train"}
    fake_server.add("GET", "/api/v1/jobs", 200, {"jobs": [job], "total": 1})
    result = cli("queue", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0][0] == "ID" and rows[1][0] == "17" and "train" in rows[1]
