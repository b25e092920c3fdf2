#!/usr/bin/env bash
# The GPU checks of issues 18 and 16, as one script for a lent device machine (bare: PyTorch and
# torchvision are there, trainlab's other dependencies may not be).
#
#   bash scripts/gpu_check.sh                 # on the GPU machine; logs and figures in $OUT
#   CHECKS=vectorized bash scripts/gpu_check.sh   # only issue 16's (step 6); CHECKS=issue18: steps 2-5
#   SKIP_GPU=1 bash scripts/gpu_check.sh      # rehearsal on a CPU machine: GPU steps skipped, step 6 shrunk
#
# Wheels for what the device lacks (hydra-core, omegaconf, antlr4) travel in .whl/ (see
# /work/.library/device/README.md): made here with
#   pip download --no-deps -d .whl hydra-core==1.3.8 omegaconf==2.3.1 antlr4-python3-runtime==4.9.3
# Each step's output goes to $OUT/<step>.log and a line per step to $OUT/summary.txt; a failing
# step is recorded and the script goes on, so one run on the GPU says everything it can.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu_check_out}
mkdir -p "$OUT"
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 TRAINLAB_VERBOSE=0

step() {  # step NAME COMMAND...: run it, log it, one line in the summary
    local name=$1; shift
    local start=$SECONDS
    "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    echo "$name: rc=$rc ($((SECONDS - start)) s)" | tee -a "$SUMMARY"
    return 0
}

# 1. What is missing gets installed from the carried wheels (no network there).
if ! $PY -c "import hydra, omegaconf" 2>/dev/null; then
    if ls .whl/*.whl .whl/*.tar.gz >/dev/null 2>&1; then
        $PY -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir --target /tmp/site .whl/* \
            >> "$OUT/install.log" 2>&1
        export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
    fi
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
step versions $PY -c "import torch, torchvision, hydra, omegaconf; print(torch.__version__, torchvision.__version__,
hydra.__version__, torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')"
cat "$OUT/versions.log" | tee -a "$SUMMARY"

if [ "${SKIP_GPU:-0}" = "1" ]; then
    DEVICE=cpu; GPU_TESTS="-m gpu --co"; SIZE=256   # collect only: the GPU tests exist and import
else
    DEVICE=cuda; GPU_TESTS="-m gpu"; SIZE=4096
fi

CHECKS=${CHECKS:-all}
if [ "$CHECKS" != vectorized ]; then
# 2. The gpu-marked tests (CUDA sync-debug of the hot loop and the loader, bf16/fp16/channels_last/compile).
step pytest_gpu $PY -m pytest -x -q -p no:cacheprovider $GPU_TESTS

# 3. Real short runs on a synthetic CIFAR-shaped set: each precision/layout/compile option, and auto placement.
CIFAR="dataset=synthetic dataset.shape=[3,32,32] dataset.train_size=$SIZE dataset.test_size=256 arch=resnet
trainer.epochs=2 trainer.progress=plain trainer.device=$DEVICE"
for option in "trainer.precision=bf16" "trainer.precision=fp16" "trainer.channels_last=true trainer.precision=bf16" \
              "trainer.compile=true" "trainer.device=auto"; do
    name=run_$(echo "$option" | tr ' =.[]' '_____')
    # shellcheck disable=SC2086
    step "$name" $PY -m trainlab train $CIFAR $option "hydra.run.dir=$OUT/runs/$name"
    grep -h '"status"\|"device"\|"wall_time_s"' "$OUT/runs/$name/summary.json" 2>/dev/null | tr -d ' \n' >> "$SUMMARY"
    echo >> "$SUMMARY"
done

# 4. A run written on the GPU resumes on the CPU (checkpoints are device-free data).
step resume_on_cpu $PY -m trainlab resume "$OUT/runs/run_trainer_precision_bf16" trainer.epochs=3 trainer.device=cpu

# 5. The benchmark, short: ratios C2/C1, C2/C3, ResNet-18 C2/C0, TFLOP/s against the matmul peak.
if [ "${SKIP_GPU:-0}" = "1" ]; then
    step bench $PY -m benchmarks throughput --quick --device cpu --no-lightning --out "$OUT/BENCHMARKS_gpu.md"
else
    step bench $PY -m benchmarks throughput --workload all --reps 3 --device cuda --no-lightning --out "$OUT/BENCHMARKS_gpu.md"
fi
fi

# 6. Issue 16: a seed sweep trained as one stacked model (hydra/launcher=vectorized) against the same
#    sweep under the basic launcher, in one benchmark run each (timed by hyperfine, which must be
#    installed): MLP and CNN, 8 and 32 seeds.
if [ "$CHECKS" != issue18 ]; then
    if [ "${SKIP_GPU:-0}" = "1" ]; then SEED_COUNTS="2"; SHORT="trainer.epochs=2"; else SEED_COUNTS="8 32"; SHORT=""; fi
    for seeds in $SEED_COUNTS; do
        for arch in mlp cnn; do
            # shellcheck disable=SC2086
            step "vectorized_${arch}_${seeds}" $PY -m benchmarks stacked --seeds "$seeds" --runs 1 -- \
                "arch=$arch" "trainer.device=$DEVICE" $SHORT
            grep -E "^\| $seeds( seeds| \|)" "$OUT/vectorized_${arch}_${seeds}.log" >> "$SUMMARY"
        done
    done
fi
rm -rf "$OUT/runs"/*/checkpoints  # keep what comes back small (logs, summaries, figures)
echo "done: $SUMMARY" | tee -a "$SUMMARY"
