#!/usr/bin/env bash
# Real-GPU check of the job queue, for a machine with NVIDIA GPUs and torch: a procplan server
# over this host's real GPUs, `procplan run` (torch must see exactly the GPU it was given, the exit
# code must come back), a second run waiting for the first, an srun-style client, the NVML reader.
#
# Usage: scripts/gpu-check.sh [WHEEL_DIR]   (run from the repository root; WHEEL_DIR installs
# offline, for machines without a package index: `pip download` the dependencies into it first)
set -uo pipefail
wheels="${1:-}"
python3 -m venv --system-site-packages /tmp/v >/dev/null
if [[ -n "$wheels" ]]; then
  /tmp/v/bin/pip install -q --no-index --find-links "$wheels" hatchling 2>&1 | tail -3
  /tmp/v/bin/pip install -q --no-index --find-links "$wheels" --no-build-isolation . 2>&1 | tail -5
else
  /tmp/v/bin/pip install -q . 2>&1 | tail -5
fi
host=$(hostname)
count=$(nvidia-smi -L | wc -l)
python3 - "$host" "$count" > /tmp/cluster.json <<'PY'
import json, sys
host, count = sys.argv[1], int(sys.argv[2])
print(json.dumps({"nodes": [{"id": host, "name": host, "gpus": [{"id": f"{host}-gpu{i}", "kind": "H100"} for i in range(count)]}]}))
PY
/tmp/v/bin/procplan server --config /tmp/cluster.json --database /tmp/pp.db --port 8099 > /tmp/server.log 2>&1 &
for i in $(seq 50); do curl -sf http://127.0.0.1:8099/health >/dev/null && break; sleep 0.2; done
export PROCPLAN_URL=http://127.0.0.1:8099
echo "== procplan run on the real GPU"
/tmp/v/bin/procplan run -n 1 --time 5m -- python3 -c "
import os, torch
print('CUDA_VISIBLE_DEVICES', os.environ['CUDA_VISIBLE_DEVICES'], 'CUDA_DEVICE_ORDER', os.environ['CUDA_DEVICE_ORDER'], 'PROCPLAN_GPUS', os.environ['PROCPLAN_GPUS'])
print('torch sees', torch.cuda.device_count(), torch.cuda.get_device_name(0))
x = torch.randn(4096, 4096, device='cuda'); print('matmul ok', float((x @ x).abs().sum()) > 0)
raise SystemExit(7)"
echo "exit code: $?"
echo "== a second run waits while the first holds the GPU"
/tmp/v/bin/procplan run -n 1 --time 5m -- python3 -c "import time, torch; torch.zeros(1, device='cuda'); time.sleep(3)" &
first=$!
sleep 1.5
start=$(date +%s.%N)
/tmp/v/bin/procplan run -n 1 --time 5m -- python3 -c "import torch; print('second got', torch.cuda.get_device_name(0))"
end=$(date +%s.%N)
wait $first
echo "second waited $(python3 -c "print(round($end - $start, 1))") s"
echo "== srun-style client (curl + jq, POST /acquire then exec)"
GPUSCHED_URL=http://127.0.0.1:8099 bash tests/e2e/srun_like.sh -n 1 python3 -c "import os, torch; print('srun job sees', os.environ['CUDA_VISIBLE_DEVICES'], torch.cuda.device_count())"
sleep 2
curl -s http://127.0.0.1:8099/jobs; echo
curl -s http://127.0.0.1:8099/status; echo
/tmp/v/bin/procplan queue --all
echo "== NVML reader"
/tmp/v/bin/python -c "
from procplan.agent.nvml import NvmlReader
r = NvmlReader(); print(r.devices()); print(r.readings())"
kill %1 2>/dev/null; true
