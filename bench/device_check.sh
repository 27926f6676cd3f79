#!/usr/bin/env bash
# All GPU checks of issue 13 in one time-boxed call (under 10 minutes) on the lent H200;
# results in bench/RESULTS.md. Run from the repository root with .whl carried
# (../shared/tools/device-wheels.sh puts apache-beam and its missing dependencies there):
#   bash bench/device_check.sh        (logs under $OUT, or ./device-out without it)
# The machine has no PyAV or decord: decoding uses --decoder opencv there.
set -u -o pipefail
OUT=${OUT:-device-out}; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD || exit 3
export PYTHONUNBUFFERED=1
step() { local t=$1; shift; echo "== $* (limit ${t}s)"; local s=$SECONDS; timeout "$t" "$@"; echo "== rc $? after $((SECONDS - s)) s"; }
{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; nproc; python3 -c "import torch; print('torch', torch.__version__)"; } 2>&1 | tee "$OUT/machine.txt"
# 1. the extractors alone (model-only throughput, OpenPose share of the bf16 peak, CPU vs CUDA parity)
step 150 python3 -m bench.gpu_extractors --device cuda --seconds 2 --json "$OUT/gpu_extractors.json" 2>&1 | tee "$OUT/gpu_extractors.txt"
# 2. the whole pipeline at two sizes on the GPU, and on the CPU of the same machine
step 240 python3 -m bench.scale --device cuda --sizes 200,2000 --cpu-baseline --cpu-sizes 100,400 --shards 16 \
    --model-frames 2048 --max-batch-size 64 -- --decoder opencv 2>&1 | tee "$OUT/scale.txt"
# 3. the same rows on both devices: the sample card on CUDA and on CPU, compared array by array
step 60 python3 -m pipelines.extract --out /tmp/par_gpu --device cuda --decoder opencv --no-progress 2>&1 | tee "$OUT/parity.txt"
step 70 python3 -m pipelines.extract --out /tmp/par_cpu --device cpu --decoder opencv --no-progress 2>&1 | tee -a "$OUT/parity.txt"
step 20 python3 -m bench.compare_shards /tmp/par_cpu /tmp/par_gpu --stats 2>&1 | tee -a "$OUT/parity.txt"
# 4. (WITH_DASK=1; dask, distributed and their wheels from requirements.lock added to .whl) the GPU run on
#    --runner dask: one worker process per GPU, started by the CLI; compare with step 2's figures
if [ "${WITH_DASK:-0}" = 1 ]; then
  step 200 python3 -m bench.scale --device cuda --sizes 200,2000 --shards 16 --model-frames 512 --max-batch-size 64 \
    -- --decoder opencv --runner dask 2>&1 | tee "$OUT/scale_dask.txt"
fi
