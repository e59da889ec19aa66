"""Tenant routes (ADR 0005; the Go scheduler's tenant API, COMPAT §3, with its fixes): create,
list, show, patch, membership. Usage is counted by the server, never set by clients; omitted
quotas mean unlimited. In-process, demo topology, clock fixed at 2026-11-23 10:00 UTC.
"""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from procplan.server import Composed

JSON_TYPE = "application/json; charset=utf-8"
NOW_ISO = "2026-11-23T10:00:00+00:00"
TENANT_KEYS = [
    "id", "name", "email", "max_gpus", "max_gpu_memory_mb", "max_cpu_cores", "max_memory_mb",
    "max_concurrent_jobs", "priority_tier", "fair_share_weight", "allow_preemption",
    "allow_borrow", "current_gpus", "current_jobs", "usage_gpu_hours", "members", "created_at",
    "managers",
]  # fmt: skip


def assert_v1_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == JSON_TYPE
    body: dict[str, Any] = response.json()
    assert list(body.keys()) == ["error", "status", "code"], body
    assert body["status"] == status
    if code is not None:
        assert body["code"] == code, body
    return body


def create(client: TestClient, **fields: Any) -> Any:
    return client.post("/api/v1/tenants", json={"name": "ml-team", **fields})


def created(client: TestClient, **fields: Any) -> dict[str, Any]:
    response = create(client, **fields)
    assert response.status_code == 201, response.text
    tenant: dict[str, Any] = response.json()
    return tenant


# ----------------------------------------------------------------------------------- create


def test_create_with_every_go_field(client: TestClient) -> None:
    response = create(
        client,
        email="ml@example.org",
        max_gpus=10,
        max_gpu_memory_mb=400_000,
        max_cpu_cores=64,
        max_memory_mb=512_000,
        max_concurrent_jobs=5,
        priority_tier=2,
        fair_share_weight=2.5,
        allow_preemption=False,
        allow_borrow=False,
    )
    assert response.status_code == 201
    assert response.headers["content-type"] == JSON_TYPE
    body = response.json()
    assert list(body.keys()) == TENANT_KEYS
    assert body == {
        "id": "ml-team",
        "name": "ml-team",
        "email": "ml@example.org",
        "max_gpus": 10,
        "max_gpu_memory_mb": 400_000,
        "max_cpu_cores": 64,
        "max_memory_mb": 512_000,
        "max_concurrent_jobs": 5,
        "priority_tier": 2,
        "fair_share_weight": 2.5,
        "allow_preemption": False,
        "allow_borrow": False,
        "current_gpus": 0,
        "current_jobs": 0,
        "usage_gpu_hours": 0.0,
        "members": [],
        "created_at": NOW_ISO,
        "managers": [],
    }


def test_omitted_quotas_are_unlimited(client: TestClient) -> None:
    body = created(client)
    for key in ("max_gpus", "max_gpu_memory_mb", "max_cpu_cores", "max_memory_mb"):
        assert body[key] is None, key
    assert body["max_concurrent_jobs"] is None
    assert (body["fair_share_weight"], body["priority_tier"], body["email"]) == (1.0, 0, "")
    assert body["allow_preemption"] is True and body["allow_borrow"] is True


def test_priority_tier_takes_class_names(client: TestClient) -> None:
    assert created(client, priority_tier="high")["priority_tier"] == 500


def test_duplicate_name_is_409(client: TestClient) -> None:
    created(client)
    error = assert_v1_error(create(client), 409, "tenant_exists")
    assert error["error"] == "Tenant 'ml-team' already exists"


@pytest.mark.parametrize(
    "field",
    [
        "current_gpus",
        "current_jobs",
        "usage_gpu_hours",
        "current_gpu_memory_mb",
        "usage_gpu_s",
        "created_at",
        "updated_at",
        "id",
    ],
)
def test_usage_fields_are_not_client_settable(client: TestClient, field: str) -> None:
    error = assert_v1_error(create(client, **{field: 3}), 400, "invalid_request")
    assert error["error"] == f"{field} is not client-settable"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"name": None}, "name is required"),
        ({"name": ""}, "name is required"),
        ({"name": 5}, "name is required"),
        ({"name": "a/b"}, "without '/'"),
        ({"name": "x" * 65}, "at most 64 characters"),
        ({"max_gpus": -1}, "max_gpus must be an integer between 0"),
        ({"max_gpus": "many"}, "max_gpus must be an integer"),
        ({"max_gpus": True}, "max_gpus must be an integer"),
        ({"max_concurrent_jobs": 1.5}, "max_concurrent_jobs must be an integer"),
        ({"max_memory_mb": 10**30}, "max_memory_mb must be an integer"),
        ({"fair_share_weight": 0}, "fair_share_weight must be greater than 0"),
        ({"fair_share_weight": -1}, "fair_share_weight must be a number"),
        ({"fair_share_weight": "1"}, "fair_share_weight must be a number"),
        ({"fair_share_weight": True}, "fair_share_weight must be a number"),
        ({"allow_preemption": "yes"}, "allow_preemption must be true or false"),
        ({"allow_borrow": 1}, "allow_borrow must be true or false"),
        ({"allow_borrow": None}, "allow_borrow must not be null"),
        ({"email": 5}, "email must be a string"),
        ({"priority_tier": "mega"}, "priority_tier must be an integer or one of"),
        ({"members": ["bob"]}, "members is not client-settable here"),
        ({"quota": 3}, "unknown field 'quota'"),
    ],
)
def test_create_bad_input_is_400(client: TestClient, body: dict[str, Any], needle: str) -> None:
    error = assert_v1_error(create(client, **body), 400)
    assert needle in error["error"], error


def test_create_bad_json(client: TestClient) -> None:
    response = client.post(
        "/api/v1/tenants", content="nope", headers={"content-type": "application/json"}
    )
    assert_v1_error(response, 400, "invalid_request")


# -------------------------------------------------------------------------------- list, get


def test_list_has_the_default_tenant_and_the_new_ones(client: TestClient) -> None:
    created(client)
    body = client.get("/api/v1/tenants").json()
    assert list(body.keys()) == ["tenants", "total"]
    assert body["total"] == 2
    assert {t["id"] for t in body["tenants"]} == {"default", "ml-team"}
    assert all(list(t.keys()) == TENANT_KEYS for t in body["tenants"])


def test_get(client: TestClient) -> None:
    created(client, max_gpus=4)
    response = client.get("/api/v1/tenants/ml-team")
    assert response.status_code == 200
    assert response.json()["max_gpus"] == 4


def test_get_unknown_is_404(client: TestClient) -> None:
    error = assert_v1_error(client.get("/api/v1/tenants/nope"), 404, "unknown_tenant")
    assert error["error"] == "Tenant 'nope' does not exist"


def test_usage_counts_running_jobs(client: TestClient, composed: Composed) -> None:
    created(client)
    headers = {"X-ProcPlan-User": "alice"}
    for _ in range(2):
        body = {"tenant_id": "ml-team", "gpu_count": 2, "command": ["x"]}
        assert client.post("/api/v1/jobs", json=body, headers=headers).status_code == 201
    composed.scheduler.run_once()
    tenant = client.get("/api/v1/tenants/ml-team").json()
    assert (tenant["current_gpus"], tenant["current_jobs"]) == (4, 2)


# ------------------------------------------------------------------------------------ patch


def test_patch_changes_only_what_is_given(client: TestClient) -> None:
    created(client, max_gpus=4, email="a@b.c")
    response = client.patch("/api/v1/tenants/ml-team", json={"max_gpus": 8, "fair_share_weight": 3})
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body.keys()) == TENANT_KEYS
    assert (body["max_gpus"], body["fair_share_weight"], body["email"]) == (8, 3.0, "a@b.c")


def test_patch_null_lifts_a_quota(client: TestClient) -> None:
    created(client, max_gpus=4, max_concurrent_jobs=2)
    body = client.patch(
        "/api/v1/tenants/ml-team", json={"max_gpus": None, "max_concurrent_jobs": None}
    ).json()
    assert body["max_gpus"] is None and body["max_concurrent_jobs"] is None


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({}, "nothing to change"),
        ({"name": "other"}, "name cannot be changed"),
        ({"current_gpus": 0}, "current_gpus is not client-settable"),
        ({"max_gpus": "x"}, "max_gpus must be an integer"),
        ({"allow_borrow": None}, "allow_borrow must not be null"),
        ({"nope": 1}, "unknown field 'nope'"),
    ],
)
def test_patch_bad_input_is_400(client: TestClient, body: dict[str, Any], needle: str) -> None:
    created(client)
    error = assert_v1_error(client.patch("/api/v1/tenants/ml-team", json=body), 400)
    assert needle in error["error"], error


def test_patch_unknown_is_404(client: TestClient) -> None:
    response = client.patch("/api/v1/tenants/nope", json={"max_gpus": 1})
    assert_v1_error(response, 404, "unknown_tenant")


# ---------------------------------------------------------------------------------- members


def test_members_add_is_idempotent_and_remove(client: TestClient) -> None:
    created(client)
    for _ in range(2):
        response = client.put("/api/v1/tenants/ml-team/members/bob")
        assert response.status_code == 200, response.text
        assert response.json()["members"] == ["bob"]
    client.put("/api/v1/tenants/ml-team/members/carol")
    assert client.get("/api/v1/tenants/ml-team").json()["members"] == ["bob", "carol"]
    response = client.delete("/api/v1/tenants/ml-team/members/bob")
    assert response.status_code == 200 and response.json()["members"] == ["carol"]


def test_member_errors(client: TestClient) -> None:
    created(client)
    error = assert_v1_error(client.delete("/api/v1/tenants/ml-team/members/bob"), 404)
    assert error == {
        "error": "User 'bob' is not a member of tenant 'ml-team'",
        "status": 404,
        "code": "not_member",
    }
    assert_v1_error(client.put("/api/v1/tenants/nope/members/bob"), 404, "unknown_tenant")
    assert_v1_error(client.delete("/api/v1/tenants/nope/members/bob"), 404, "unknown_tenant")
    assert_v1_error(client.put("/api/v1/tenants/ml-team/members/%20"), 400, "invalid_request")


def test_membership_decides_where_jobs_go(client: TestClient) -> None:
    created(client)
    client.put("/api/v1/tenants/ml-team/members/bob")
    body = {"command": ["x"]}
    bob = client.post("/api/v1/jobs", json=body, headers={"X-ProcPlan-User": "bob"})
    assert bob.json()["job"]["tenant_id"] == "ml-team"  # a member's default tenant
    eve = client.post(
        "/api/v1/jobs", json={**body, "tenant_id": "ml-team"}, headers={"X-ProcPlan-User": "eve"}
    )
    assert_v1_error(eve, 403, "not_member")
