"""``procplan tenant create/list/show/set`` against a canned server."""

from __future__ import annotations

import pytest

from procplan.cli import tenants

VISION = {
    "id": "vision",
    "name": "vision",
    "email": "lab@example.org",
    "max_gpus": 8,
    "max_gpu_memory_mb": None,
    "max_cpu_cores": None,
    "max_memory_mb": None,
    "max_concurrent_jobs": None,
    "priority_tier": 0,
    "fair_share_weight": 2.0,
    "allow_preemption": True,
    "allow_borrow": False,
    "current_gpus": 3,
    "current_jobs": 2,
    "usage_gpu_hours": 12.3456,
    "members": ["alice", "bob"],
    "managers": ["alice"],
    "created_at": "2026-11-20T08:00:00+00:00",
}


def test_create_sends_only_the_options_given(cli, fake_server):
    fake_server.add("POST", "/api/v1/tenants", 201, VISION)
    result = cli(
        "tenant", "create", "vision", "--max-gpus", "8", "--max-jobs", "4", "--weight", "2",
        "--no-borrow", "--tier", "5", "--email", "lab@example.org",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout == "Created tenant vision\n"
    assert fake_server.requests[0].json() == {
        "name": "vision",
        "max_gpus": 8,
        "max_concurrent_jobs": 4,
        "fair_share_weight": 2.0,
        "priority_tier": 5,
        "email": "lab@example.org",
        "allow_borrow": False,
    }
    assert cli("tenant", "create", "nlp", "--no-preempt").exit_code == 0
    assert fake_server.requests[1].json() == {"name": "nlp", "allow_preemption": False}


def test_create_refused_exits_1(cli, fake_server):
    error = {"error": "tenant 'vision' already exists", "status": 409, "code": "tenant_exists"}
    fake_server.add("POST", "/api/v1/tenants", 409, error)
    result = cli("tenant", "create", "vision")
    assert (result.exit_code, result.stderr) == (1, "error: tenant 'vision' already exists\n")


def test_list_shows_usage_against_quotas(cli, fake_server):
    other = {"id": "default", "name": "default", "members": [], "fair_share_weight": 1.0}
    fake_server.add("GET", "/api/v1/tenants", 200, {"tenants": [VISION, other], "total": 2})
    result = cli("tenant", "list")
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if "vision" in line)
    for text in ("3/8", "2.0", "no", "yes", "12.3", "alice, bob"):
        assert text in row
    assert any("default" in line for line in result.stdout.splitlines())


def test_list_empty(cli, fake_server):
    fake_server.add("GET", "/api/v1/tenants", 200, {"tenants": [], "total": 0})
    assert cli("tenant", "list").stdout == "No tenants.\n"


def test_show_lists_members_and_usage(cli, fake_server):
    fake_server.add("GET", "/api/v1/tenants/vision", 200, VISION)
    result = cli("tenant", "show", "vision")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    for line in (
        "Tenant: vision",
        "Members: alice, bob",
        "Managers: alice",
        "Max GPUs: 8",
        "Max jobs: unlimited",
        "Borrowing: no",
        "GPUs in use: 3/8",
        "Jobs running: 2",
        "Usage (GPU hours): 12.3",
        "Created: 2026-11-20 08:00",
    ):
        assert line in lines


def test_set_patches_clears_quotas_and_changes_members(cli, fake_server):
    fake_server.add("PATCH", "/api/v1/tenants/vision", 200, VISION)
    fake_server.add("PUT", "/api/v1/tenants/vision/members/carol", 200, {})
    fake_server.add("DELETE", "/api/v1/tenants/vision/members/bob", 200, {})
    fake_server.add("GET", "/api/v1/tenants/vision", 200, VISION)
    result = cli(
        "tenant", "set", "vision", "--max-gpus", "none", "--max-jobs", "3", "--borrow",
        "--no-preempt", "--add-user", "carol", "--remove-user", "bob",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Tenant: vision" in result.stdout
    methods = [(r.method, r.path) for r in fake_server.requests]
    assert methods == [
        ("PATCH", "/api/v1/tenants/vision"),
        ("PUT", "/api/v1/tenants/vision/members/carol"),
        ("DELETE", "/api/v1/tenants/vision/members/bob"),
        ("GET", "/api/v1/tenants/vision"),
    ]
    assert fake_server.requests[0].json() == {
        "max_gpus": None,
        "max_concurrent_jobs": 3,
        "allow_borrow": True,
        "allow_preemption": False,
    }


def test_set_members_only_skips_the_patch(cli, fake_server):
    fake_server.add("PUT", "/api/v1/tenants/vision/members/carol", 200, {})
    fake_server.add("GET", "/api/v1/tenants/vision", 200, VISION)
    assert cli("tenant", "set", "vision", "--add-user", "carol").exit_code == 0
    assert [r.method for r in fake_server.requests] == ["PUT", "GET"]


@pytest.mark.parametrize(
    "args",
    [
        ["tenant", "set", "vision"],
        ["tenant", "set", "vision", "--max-gpus", "lots"],
        ["tenant", "create", "vision", "--max-gpus", "-1"],
    ],
)
def test_bad_arguments_are_usage_errors(cli, fake_server, args):
    assert cli(*args).exit_code == 2
    assert fake_server.requests == []


def test_members_accepts_names_and_objects():
    assert tenants.members({"members": ["a", {"user": "b"}]}) == ["a", "b"]
    assert tenants.members({}) == []
