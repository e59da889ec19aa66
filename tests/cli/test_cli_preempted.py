"""``procplan book`` names the open-ended jobs a new booking will preempt (ledger rule 4)."""

from __future__ import annotations

from procplan.cli.bookings import preempted_line


def test_the_warning_names_the_job_its_owner_gpus_and_fate() -> None:
    line = preempted_line(
        {
            "job_id": "17",
            "user": "bob",
            "gpu_ids": ["node-a-gpu0", "node-a-gpu1"],
            "action": "SIGTERM at 2026-11-23T11:00:00+00:00, SIGKILL 30 s later, then requeued",
        }
    )
    assert line == (
        "warning: open-ended job 17 of bob holds on node-a-gpu0, node-a-gpu1: "
        "SIGTERM at 2026-11-23T11:00:00+00:00, SIGKILL 30 s later, then requeued"
    )


def test_server_text_is_shown_not_obeyed() -> None:
    line = preempted_line({"job_id": "1", "user": "\x1b[2Jmallory", "action": "x\x07"})
    assert "\x1b" not in line and "\x07" not in line and "mallory" in line
    assert preempted_line("9") == "warning: job 9 holds some of these GPUs now"
