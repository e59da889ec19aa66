"""Simulated clusters, as the production ``core.model.Topology``, so the planner under
simulation sees exactly the values the server would give it.

- ``parse_nodes``: a short spec, ``"69x8"`` is 69 nodes of 8 GPUs, ``"2x8,4x2"`` mixes shapes.
- ``parse_philly_machines``: Philly's released machine list (552 machines, 2,490 GPUs).
- ``parse_alibaba_nodes``: Alibaba's 2023 GPU node list (1,213 nodes, 6,212 GPUs).
- ``parse_vc_nodes`` + ``partition_by_group``: one cluster per virtual cluster, as Helios
  simulated Philly (``vc,node num``, 8 GPUs a node, each VC replayed on its own).

Like the trace readers these are pure functions of text; a bad row is a ``ValueError`` with
its line number. GPU ids are ``<node id>-g<index>``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Sequence

from procplan.core.model import Gpu, Node, Topology
from procplan.sim.traces import TraceJob

SIM_GPU_KIND = "sim"


def parse_nodes(spec: str) -> Topology:
    """Nodes ``n0, n1, ...`` in spec order with GPUs ``n0-g0, ...``; ``ValueError`` on a bad
    spec (empty, a part without ``x``, a count below 1)."""
    nodes: list[Node] = []
    parts = [p.strip() for p in spec.split(",")]
    if not spec.strip() or not all(parts):
        raise ValueError(f"bad node spec {spec!r}: expected COUNTxGPUS[,COUNTxGPUS...]")
    for part in parts:
        count_text, sep, gpus_text = part.lower().partition("x")
        try:
            count, gpus = int(count_text), int(gpus_text)
        except ValueError:
            count = gpus = 0
        if not sep or count < 1 or gpus < 1:
            raise ValueError(f"bad node spec part {part!r}: expected COUNTxGPUS, both ≥ 1")
        for _ in range(count):
            node_id = f"n{len(nodes)}"
            devices = tuple(
                Gpu(id=f"{node_id}-g{i}", kind=SIM_GPU_KIND, index=i) for i in range(gpus)
            )
            nodes.append(Node(id=node_id, name=node_id, gpus=devices))
    return Topology(tuple(nodes))


def _node(node_id: str, gpus: int, kind: str, memory_mb: int | None = None) -> Node:
    devices = tuple(
        Gpu(id=f"{node_id}-g{i}", kind=kind, index=i, memory_mb=memory_mb) for i in range(gpus)
    )
    return Node(id=node_id, name=node_id, gpus=devices)


def _table(
    text: str, required: Iterable[str], make: Callable[[dict[str, str]], Node | None]
) -> Topology:
    """Nodes from CSV rows (header spaces after commas are allowed), ids distinct; rows for
    which ``make`` returns ``None`` are left out."""
    reader = csv.DictReader(io.StringIO(text), skipinitialspace=True)
    missing = [c for c in required if c not in (reader.fieldnames or ())]
    if missing:
        raise ValueError(f"line 1: missing columns {', '.join(missing)}")
    nodes: list[Node] = []
    lines: dict[str, int] = {}  # node id -> its line
    for row in reader:
        line = reader.line_num
        try:
            node = make({k: (v or "").strip() for k, v in row.items() if k is not None})
        except (ValueError, TypeError) as exc:
            raise ValueError(f"line {line}: {exc}") from None
        if node is None:
            continue
        if node.id in lines:
            raise ValueError(f"line {line}: node {node.id!r} already on line {lines[node.id]}")
        lines[node.id] = line
        nodes.append(node)
    return Topology(tuple(nodes))


def _gpus(value: str) -> int:
    count = int(value)
    if count < 0:
        raise ValueError(f"negative GPU count {value!r}")
    return count


_MEMORY = re.compile(r"(\d+)\s*GB", re.IGNORECASE)


def _philly_machine(row: dict[str, str]) -> Node:
    memory = row["single GPU mem"]
    match = _MEMORY.fullmatch(memory)
    if not row["machineId"] or not match:
        raise ValueError(f"bad machine {row['machineId']!r} with GPU memory {memory!r}")
    kind = f"{match.group(1)}GB"
    return _node(row["machineId"], _gpus(row["number of GPUs"]), kind, int(match.group(1)) * 1024)


def parse_philly_machines(text: str) -> Topology:
    """Philly's ``cluster_machine_list``: ``machineId, number of GPUs, single GPU mem``.
    Node id = machineId, in file order; GPU kind = the memory as written (``"12GB"``,
    ``"24GB"``: the list names no model), ``memory_mb`` = GB × 1024."""
    cols = ("machineId", "number of GPUs", "single GPU mem")
    return _table(text, cols, _philly_machine)


def _alibaba_node(row: dict[str, str]) -> Node | None:
    gpus = _gpus(row["gpu"])
    if not row["sn"] or (gpus and not row["model"]):
        raise ValueError(f"bad node {row['sn']!r} with GPU model {row['model']!r}")
    return _node(row["sn"], gpus, row["model"]) if gpus else None


def parse_alibaba_nodes(text: str) -> Topology:
    """Alibaba's ``openb_node_list_*.csv``: ``sn, cpu_milli, memory_mib, gpu, model``. GPU
    nodes only (``gpu`` ≥ 1), in file order; node id = sn, GPU kind = model (G2, T4, P100,
    ...). The GPU memory is not in the file, so ``memory_mb`` stays unset."""
    return _table(text, ("sn", "gpu", "model"), _alibaba_node)


def parse_vc_nodes(text: str) -> dict[str, int]:
    """Helios' per-VC capacity file, ``vc,node num``: VC → nodes, in file order."""
    reader = csv.DictReader(io.StringIO(text), skipinitialspace=True)
    missing = [c for c in ("vc", "node num") if c not in (reader.fieldnames or ())]
    if missing:
        raise ValueError(f"line 1: missing columns {', '.join(missing)}")
    sizes: dict[str, int] = {}
    for row in reader:
        vc, count_text = (row["vc"] or "").strip(), (row["node num"] or "").strip()
        try:
            count = int(count_text)
        except ValueError:
            count = 0
        if not vc or count < 1 or vc in sizes:
            raise ValueError(
                f"line {reader.line_num}: bad VC row {vc!r},{count_text!r}: "
                "expected a new VC and a node count ≥ 1"
            )
        sizes[vc] = count
    return sizes


Partition = tuple[str, list[TraceJob], Topology]


def partition_by_group(
    jobs: Sequence[TraceJob], vc_nodes: dict[str, int], gpus_per_node: int = 8
) -> tuple[list[Partition], list[TraceJob]]:
    """One ``(vc, jobs, cluster)`` per VC of ``vc_nodes`` (in its order, a VC without jobs
    too), the cluster being ``node num × gpus_per_node`` GPUs with node ids ``<vc>-n<i>``
    (distinct across partitions), and the jobs whose group is in no partition (dropped). Job
    order and submission times are kept: each partition is replayed on its own, on the same
    clock."""
    if gpus_per_node < 1:
        raise ValueError(f"gpus_per_node must be at least 1, not {gpus_per_node}")
    by_vc: dict[str, list[TraceJob]] = {vc: [] for vc in vc_nodes}
    dropped: list[TraceJob] = []
    for job in jobs:
        by_vc.get(job.group, dropped).append(job)
    partitions: list[Partition] = []
    for vc, count in vc_nodes.items():
        nodes = tuple(_node(f"{vc}-n{i}", gpus_per_node, SIM_GPU_KIND) for i in range(count))
        partitions.append((vc, by_vc[vc], Topology(nodes)))
    return partitions, dropped
