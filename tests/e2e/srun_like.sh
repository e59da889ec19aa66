#!/usr/bin/env bash
# A client that behaves like local-gpu-scheduler's `srun`: one blocking POST /acquire with
# this shell's PID, then exec the command in the same process with CUDA_VISIBLE_DEVICES set.
# The server notices the end of the job when that PID exits.
set -euo pipefail
url="${GPUSCHED_URL:-http://localhost:9123}"
count=1
if [[ "${1:-}" == "-n" ]]; then count="$2"; shift 2; fi
reply=$(curl -sf -X POST -H 'Content-Type: application/json' \
  -d "{\"pid\":$$,\"num_gpus\":${count}}" "${url}/acquire") || { echo "acquire failed" >&2; exit 1; }
gpus=$(printf '%s' "$reply" | jq -r '.gpus')
job=$(printf '%s' "$reply" | jq -r '.job_id')
[[ -n "$gpus" && "$gpus" != "null" ]] || { echo "no GPUs in reply: $reply" >&2; exit 1; }
echo "acquired ${gpus} (job ${job})" >&2
export CUDA_VISIBLE_DEVICES="$gpus"
exec "$@"
