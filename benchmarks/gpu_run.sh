#!/usr/bin/env bash
# The GPU throughput table of docs/benchmarks.md in one call on the lent GPU machine (nothing is installed: the
# machine's python3 has torch, safetensors, typer, rich, pyyaml; ganforge runs from this checkout).
#   bash benchmarks/gpu_run.sh [DEADLINE_SECONDS] [extra gpu_throughput.py arguments...]
# Writes $OUT/gpu_throughput.md (or ./gpu_throughput.md without $OUT) and prints it as it goes.
set -uo pipefail
cd "$(dirname "$0")/.."
deadline=${1:-360}
shift || true
out=${OUT:-.}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available() and torch.cuda.get_device_name())"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader 2>/dev/null || true
python3 benchmarks/gpu_throughput.py --families dcgan sngan stylegan biggan progan --resolutions 64 128 256 \
    --seconds 1.0 --rounds 2 --deadline "$deadline" --extras --markdown "$out/gpu_throughput.md" "$@" \
    2>&1 | tee "$out/gpu_run.log"
