#!/usr/bin/env bash
# One call on the lent GPU machine: the whole test suite with CUDA visible (train.device 'auto' then picks the GPU
# in every test that does not pin the CPU), then BigGAN at 256 px (the attention-memory fix, untested on a GPU).
#   bash benchmarks/gpu_check.sh [PYTEST_SECONDS] [BENCH_SECONDS]
# The machine's python3 has torch, pytest(-xdist, -timeout), scikit-learn, scipy, torchvision, torchmetrics; the
# packages it lacks travel as wheels in ./.whl (optuna and its needs, plotly, nltk; see docs/benchmarks.md), carried by
# the device tool. Not there: gradio, playwright, imageio-ffmpeg (UI and MP4 tests skip or fail there for that
# reason alone) and ../shared/data (the tests that read it skip). Writes $OUT/pytest_gpu.log, $OUT/biggan256.md.
set -uo pipefail
cd "$(dirname "$0")/.."
tests_s=${1:-300}
bench_s=${2:-100}
out=${OUT:-.}
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
workers=$(( $(nproc) - 2 ))
# -v: each outcome is printed as it happens (xdist prints failures only at the end, lost if the call is cut off);
# a per-test timeout: the first try of this script (per-test limit = the whole budget) hung past 300 s at 85%
timeout "$tests_s" python3 -m pytest -n "$workers" -v -p no:cacheprovider --timeout 60 --tb=line -rfE \
    tests > "$out/pytest_gpu.log" 2>&1
grep -E "FAILED|ERROR|passed|failed|^E " "$out/pytest_gpu.log" | tail -150
python3 benchmarks/gpu_throughput.py --families biggan --resolutions 256 --seconds 1.0 --rounds 2 \
    --deadline "$bench_s" --markdown "$out/biggan256.md" 2>&1 | tail -40
