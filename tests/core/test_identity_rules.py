"""The pure authorization rules: who may change, see and act for whom (issue #12)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from procplan.core.errors import Forbidden, Unauthorized
from procplan.core.identity import (
    NOBODY,
    OPEN_COMPAT,
    Policy,
    Principal,
    Role,
    Via,
    admin_acting,
    may_change,
    may_see_private,
    require,
)

NAMES = st.sampled_from(["alice", "bob", "root", "anonymous"])
PROVEN = st.sampled_from([Via.TOKEN, Via.SESSION, Via.PEER, Via.PROXY])
principals = st.one_of(
    st.just(NOBODY),
    st.just(OPEN_COMPAT),
    st.builds(Principal, NAMES, st.sampled_from(list(Role)), PROVEN),
)


@given(principals, NAMES)
def test_only_the_owner_or_a_proven_admin_changes_an_object(who: Principal, owner: str) -> None:
    allowed = who.name == owner or (who.proven and who.role is Role.ADMIN)
    if allowed:
        may_change(who, owner, "booking 1")
    else:
        with pytest.raises(Forbidden):
            may_change(who, owner, "booking 1")


@given(principals, NAMES)
def test_private_fields_are_the_owners_and_admins(who: Principal, owner: str) -> None:
    assert may_see_private(who, owner) == (
        who.proven and (who.name == owner or who.role is Role.ADMIN)
    )


@given(principals, st.sampled_from(list(Policy)), st.sampled_from([None, "lab"]))
def test_policies_refuse_the_unproven_and_the_unprivileged(
    who: Principal, policy: Policy, tenant: str | None
) -> None:
    try:
        require(who, policy, tenant)
    except Unauthorized:
        assert not who.proven and policy not in (Policy.PUBLIC, Policy.AGENT)
        assert not (policy is Policy.COMPAT_WRITE and who.via is Via.OPEN)
        return
    except Forbidden:
        assert who.proven and not who.is_admin
        assert policy in (Policy.ADMIN, Policy.TENANT_MANAGER)
        return
    if policy in (Policy.ADMIN,):
        assert who.is_admin
    if policy in (Policy.AUTHENTICATED, Policy.OWNER):
        assert who.proven


def test_only_admins_act_for_others_and_stay_on_the_record() -> None:
    admin = Principal("root", Role.ADMIN, Via.PEER, "root", 0)
    acting = admin.acting_for("carol")
    assert (acting.name, acting.actor, acting.uid, acting.unix_user) == (
        "carol",
        "root",
        None,
        None,
    )
    assert acting.is_admin and acting.acting_for_other and admin_acting(acting, "carol")
    assert admin.acting_for("root") is admin
    with pytest.raises(Forbidden):
        Principal("bob", Role.USER, Via.TOKEN).acting_for("alice")
    with pytest.raises(Forbidden):
        OPEN_COMPAT.acting_for("alice")  # unproven: not an admin, whatever it claims


def test_a_managers_tenants_are_its_own() -> None:
    manager = Principal("ada", Role.USER, Via.TOKEN, manages=frozenset({"vision"}))
    require(manager, Policy.TENANT_MANAGER, "vision")
    with pytest.raises(Forbidden):
        require(manager, Policy.TENANT_MANAGER, "nlp")
