"""The agents a server runs in-process (``procplan.embedded``)."""

from __future__ import annotations

from pathlib import Path

from procplan.config import Settings
from procplan.core.jobs import Job, JobState
from procplan.embedded import DemoGpuReader, embedded_agents, server_url, state_dir


def test_demo_runs_an_agent_per_demo_node(tmp_path: Path) -> None:
    settings = Settings(database=tmp_path / "d.db", demo=True, local_node="ws", port=9123)
    agents = embedded_agents(settings, "tok")
    assert [a.config.node_id for a in agents] == ["node-a", "node-b", "ws"]
    assert {a.config.server_url for a in agents} == {"http://127.0.0.1:9123"}
    assert {a.config.token for a in agents} == {"tok"}
    assert agents[0].reader.devices()[0].memory_mb == 40_960  # the demo's A100s
    assert agents[0].config.state_dir == tmp_path / "d.db.agents" / "node-a"


def test_no_local_agent_when_switched_off_or_not_named(tmp_path: Path) -> None:
    off = Settings(database=tmp_path / "d.db", demo=True, local_agent="off")
    assert embedded_agents(off, "tok") == []
    config = tmp_path / "cluster.json"
    config.write_text('{"nodes": [{"id": "elsewhere", "gpus": [{"id": "e0"}]}]}')
    other = Settings(database=tmp_path / "d.db", config=config, local_node="ws")
    assert embedded_agents(other, "tok") == []


def test_server_url_and_state_dir(tmp_path: Path) -> None:
    assert server_url(Settings(host="0.0.0.0", port=1)) == "http://127.0.0.1:1"
    assert server_url(Settings(host="::1", port=2)) == "http://[::1]:2"
    explicit = Settings(agent_state_dir=tmp_path / "s")
    assert state_dir(explicit, "n") == tmp_path / "s" / "n"


def test_demo_gpus_look_busy_under_a_running_job() -> None:
    job = Job(id=7, user="ada", name="train", state=JobState.RUNNING, pid=4242)
    reader = DemoGpuReader(lambda: [(1, job)], count=2, host="n")
    idle, busy = reader.readings()
    assert idle.utilization_pct == 0.0 and idle.memory_used_mb == 0
    assert busy.utilization_pct is not None and busy.utilization_pct >= 70
    assert busy.memory_used_mb == 81_559 * 6 // 10
    [process] = reader.processes()
    assert (process.pid, process.user, process.command) == (4242, "ada", "train")
    assert process.gpu_uuid == busy.uuid
