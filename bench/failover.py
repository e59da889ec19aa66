"""Leader failover (issue #16 item 6, ADR 0021): ``kill -9`` of the server that runs the
cycle, ten times in one run, with two real servers on one PostgreSQL database.

The rig is the end-to-end test's (``tests/e2e/failover_rig.py``, whose docstring says what
one kill does): a real agent and real ``procplan run`` clients on the URL list, a booker
and a sampler thread throughout. Per kill it measures the time from SIGKILL until the other
server reports itself leader and until a job submitted after the kill runs (``failover``,
the figure the target is about: ≤ 10 s). It counts samples where two running jobs shared a
GPU (``double_claims``) and acknowledged bookings missing at the end (``lost_writes``).

The database: ``--pg-url`` (default ``$PROCPLAN_TEST_PG_URL``, see
``scripts/test-postgres.sh``) names a server; the benchmark makes a fresh database
``procplan_failover_bench`` on it (dropped first if it exists) and leaves it there.

Prints a final ``SUMMARY`` line.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the rig: with its e2e test
from tests.e2e.failover_rig import failover_rig

from _servers import machine, percentile

DATABASE = "procplan_failover_bench"


def fresh_database(server_url: str) -> str:
    """The URL of a new, empty ``DATABASE`` on the server ``server_url`` names."""
    url = sa.make_url(server_url)
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
            conn.exec_driver_sql(f'CREATE DATABASE "{DATABASE}"')
    finally:
        engine.dispose()
    return url.set(database=DATABASE).render_as_string(hide_password=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg-url", default=os.environ.get("PROCPLAN_TEST_PG_URL"))
    parser.add_argument("--kills", type=int, default=10)
    args = parser.parse_args(argv)
    if not args.pg_url:
        parser.error("no PostgreSQL: pass --pg-url or set PROCPLAN_TEST_PG_URL")
    print(f"machine: {machine()}")
    with (
        tempfile.TemporaryDirectory(prefix="procplan-failover-") as tmp,
        failover_rig(fresh_database(args.pg_url), Path(tmp)) as rig,
    ):
        kills = []
        for n in range(1, args.kills + 1):
            kill = rig.kill_leader()
            kills.append(kill)
            print(
                f"kill {n}: leader after {kill.leader_s:.2f} s, job runs after {kill.job_s:.2f} s"
            )
        rig.leader()
        lost = rig.lost_writes()
    watch = rig.watch
    failover = [kill.job_s for kill in kills]
    leader = [kill.leader_s for kill in kills]
    print(
        f"bookings acknowledged={len(watch.acknowledged)} unanswered={watch.unanswered} "
        f"refused={len(watch.refused)}; running-job samples={watch.samples}"
    )
    print(
        f"SUMMARY failover_p50_s={percentile(failover, 0.5):.2f} "
        f"failover_max_s={max(failover):.2f} leader_p50_s={percentile(leader, 0.5):.2f} "
        f"leader_max_s={max(leader):.2f} double_claims={len(watch.double_claims)} "
        f"lost_writes={len(lost)} kills={len(kills)}"
    )
    return 0 if not watch.double_claims and not lost else 1


if __name__ == "__main__":
    raise SystemExit(main())
