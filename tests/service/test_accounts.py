"""Accounts: hashed secrets, cached verification that revocation reaches, peers by uid."""

from __future__ import annotations

import os
import pwd
import subprocess

import pytest
import sqlalchemy as sa
from tests.conftest import FIXED_NOW

from procplan.core.errors import Conflict, Forbidden, InvalidRequest, TooManyRequests
from procplan.core.identity import Principal, Role, Via
from procplan.service.accounts import (
    FAILED_SIGN_IN_WINDOW_S,
    MAX_FAILED_SIGN_INS,
    AccountService,
    AccountSettings,
    digest_of,
)
from procplan.service.run_as import RunAsPolicy, check_own_pid
from procplan.store.accounts_repo import AccountStore
from procplan.store.engine import Store
from procplan.testing import FakeClock


class Ticker:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(db: Store) -> Store:
    """These tests run once on SQLite and once on PostgreSQL."""
    return db


def service(store: Store, ticker: Ticker | None = None) -> AccountService:
    settings = AccountSettings(cache_s=5.0, host_admin_uids=frozenset({0}))
    return AccountService(AccountStore(store), FakeClock(FIXED_NOW), settings, ticker or Ticker())


def test_secrets_are_stored_as_digests_and_passwords_as_argon2(store: Store) -> None:
    accounts = service(store)
    accounts.add_user("ada", Role.USER, "ada", "a long password")
    secret, _ = accounts.create_token("ada", "laptop", None)
    with store.read() as conn:
        digests = conn.execute(sa.text("SELECT digest FROM credentials")).scalars().all()
        hashed = conn.execute(sa.text("SELECT password_hash FROM users")).scalar_one()
    assert digests == [digest_of(secret)] and secret not in str(digests)
    assert hashed.startswith("$argon2id$") and "a long password" not in hashed
    assert accounts.check_password("ada", "a long password") is not None
    assert accounts.check_password("ada", "wrong password") is None
    assert accounts.check_password("nobody-here", "a long password") is None


def test_a_revocation_reaches_another_process_within_the_cache_time(store: Store) -> None:
    ticker = Ticker()
    here, there = service(store, ticker), service(store, ticker)
    here.add_user("ada", Role.USER, None, None)
    secret, made = here.create_token("ada", "", None)
    assert there.verify(secret) is not None
    here.revoke(made.id)
    assert here.verify(secret) is None  # at once where it was revoked
    assert there.verify(secret) is not None  # the other process: still cached...
    ticker.now += 5.1
    assert there.verify(secret) is None  # ...for at most cache_s


def test_expired_disabled_and_foreign_secrets_prove_nobody(store: Store) -> None:
    accounts = service(store)
    accounts.add_user("ada", Role.USER, None, None)
    with pytest.raises(InvalidRequest):
        accounts.create_token("ada", "", FIXED_NOW - 1)
    soon, _ = accounts.create_token("ada", "", FIXED_NOW + 10)
    assert accounts.verify(soon) is not None
    accounts.clock.advance(11)  # type: ignore[attr-defined]
    accounts.forget_cached()
    assert accounts.verify(soon) is None
    for bogus in ("", "pp_", "not-a-token", "pp_" + "a" * 200):
        assert accounts.verify(bogus) is None
    fresh, _ = accounts.create_token("ada", "", None)
    accounts.set_user("ada", disabled=True)
    assert accounts.verify(fresh) is None
    with pytest.raises(Forbidden):
        accounts.create_token("ada", "", None)


def test_a_login_link_signs_in_once(store: Store) -> None:
    accounts = service(store)
    accounts.add_user("ada", Role.USER, None, None)
    link = accounts.login_link("ada")
    assert accounts.verify(link) is None  # a link is not a token
    assert accounts.redeem_link(link) == accounts.principal_of("ada", Via.SESSION)
    assert accounts.redeem_link(link) is None


def test_users_are_added_once_and_the_last_admin_stays(store: Store) -> None:
    accounts = service(store)
    accounts.add_user("root", Role.ADMIN, "root", None)
    with pytest.raises(Conflict):
        accounts.add_user("root", Role.USER, None, None)
    with pytest.raises(Conflict):
        accounts.remove_user("root")
    with pytest.raises(InvalidRequest):
        accounts.add_user("ada", Role.USER, None, "short")


def test_local_peers_are_their_unix_users(store: Store) -> None:
    accounts = service(store)
    root = accounts.peer(0)
    assert root == Principal("root", Role.ADMIN, Via.PEER, "root", 0)
    nobody = pwd.getpwnam("nobody")
    peer = accounts.peer(nobody.pw_uid)
    assert peer is not None and (peer.name, peer.role, peer.unix_user) == (
        "nobody", Role.USER, "nobody",
    )  # fmt: skip
    assert accounts.account("nobody").unix_user == "nobody"  # created on first sight
    assert accounts.peer(2_000_000_000) is None  # a uid without a passwd entry


def test_a_root_server_runs_jobs_as_their_owners_account() -> None:
    switching = RunAsPolicy(switches_users=True, own_uid=0, own_account="root")
    assert switching.account_for(Principal("nobody", via=Via.PEER, unix_user="nobody")) == "nobody"
    for unix_user, code in ((None, "no_unix_account"), ("no-such-user-xyz", "no_unix_account")):
        with pytest.raises(InvalidRequest) as refused:
            switching.account_for(Principal("ada", via=Via.TOKEN, unix_user=unix_user))
        assert refused.value.code == code
    with pytest.raises(InvalidRequest) as as_root:
        switching.account_for(Principal("root", Role.ADMIN, Via.PEER, "root", 0))
    assert as_root.value.code == "root_job"
    allowed = RunAsPolicy(switches_users=True, allow_root_jobs=True, own_uid=0)
    assert allowed.account_for(Principal("root", Role.ADMIN, Via.PEER, "root", 0)) == "root"


def test_a_server_that_does_not_switch_runs_jobs_as_itself() -> None:
    workstation = RunAsPolicy(switches_users=False, own_uid=1000, own_account="ada")
    assert workstation.account_for(Principal("bob", via=Via.TOKEN)) == "ada"
    root_demo = RunAsPolicy(switches_users=False, own_uid=0, own_account="root")
    with pytest.raises(InvalidRequest):
        root_demo.account_for(Principal("bob", via=Via.PEER, unix_user="bob"))
    assert root_demo.account_for(Principal("root", Role.ADMIN, Via.PEER, "root", 0)) == "root"


def test_only_your_own_processes_may_be_named() -> None:
    me = Principal("me", via=Via.PEER, uid=os.geteuid())
    with subprocess.Popen(["sleep", "30"]) as child:
        try:
            assert check_own_pid(me, child.pid) == os.geteuid()
            stranger = Principal("x", via=Via.PEER, uid=os.geteuid() + 12345)
            with pytest.raises(Forbidden):
                check_own_pid(stranger, child.pid)
            with pytest.raises(Forbidden):
                check_own_pid(Principal("t", via=Via.TOKEN), child.pid)  # no Unix account
        finally:
            child.kill()
    with pytest.raises(Forbidden):
        check_own_pid(me, os.getpid())  # never the server itself
    with pytest.raises(InvalidRequest):
        check_own_pid(me, 2**22 + 7)  # no such process


def test_password_guessing_is_stopped_per_user_and_address(store: Store) -> None:
    ticker = Ticker()
    accounts = service(store, ticker)
    accounts.add_user("ada", Role.USER, None, "the right password")
    for _ in range(MAX_FAILED_SIGN_INS):
        assert accounts.check_password("ada", "a wrong guess!", "10.0.0.9") is None
    with pytest.raises(TooManyRequests) as stopped:
        accounts.check_password("ada", "the right password", "10.0.0.9")
    assert stopped.value.status == 429 and "try again in" in stopped.value.message
    assert accounts.check_password("ada", "the right password", "10.0.0.7") is not None
    ticker.now += FAILED_SIGN_IN_WINDOW_S + 1
    assert accounts.check_password("ada", "the right password", "10.0.0.9") is not None
