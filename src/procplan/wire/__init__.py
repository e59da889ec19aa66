"""Every JSON shape the server emits, and nothing else (DESIGN.md "Layout"; issue #13).

Modules by audience: ProcPlan's clients (``compat``, ``calendar``, ``dayview``), local-gpu-
scheduler's ``srun`` (``srun``), the Go scheduler's dialect and the native API (``jobs``,
``tenants``, ``cluster``, ``bookings``, ``nodes``, ``accounts``), the node agents (``agents``,
``node_status``). One function per domain object and shape, so that two routes can never
render one object two ways; ``bookings`` holds every booking shape.

Pure, like ``core``: functions from ``core`` values to dicts of plain JSON types, with the
standard library and ``procplan.core`` only (an import-linter contract), so the shapes are
tested without a server and reused by any process. Encoding (orjson) stays in ``api``. Key
order is part of every shape: JSON bytes depend on it, and the compatible routes are checked
byte for byte.
"""
