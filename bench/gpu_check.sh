#!/usr/bin/env bash
# GPU benchmark of issue 5, for a rented GPU machine (no internet, torch + torchaudio installed,
# no asteroid). Run from the repository root, with the ignored folder wheels/ carried along:
#
#     bash bench/gpu_check.sh            # results under $OUT (default bench/results/gpu)
#
# wheels/ holds what importing asteroid and this package needs beyond torch (pure-Python wheels,
# plus cffi/PyYAML for CPython 3.10-3.13 and numpy for 3.11/3.12); see bench/README.md for the
# `pip download` line that fills it. Only packages that do not import already are installed,
# with --no-deps --no-index. Budget: about 8 minutes (BUDGET=470 s for the benchmarks, counted from
# the start); every stage has its own timeout, results are written line by line, and the tables
# of whatever finished are printed at the end.
set -x
set -o pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-$ROOT/bench/results/gpu}
PY=${PYTHON:-$(command -v python || command -v python3)}
WHEELS=${WHEELS:-$ROOT/wheels}
mkdir -p "$OUT"
T0=$(date +%s)
elapsed() { echo "elapsed: $(( $(date +%s) - T0 )) s"; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
$PY -c "import sys, torch; print(sys.version); print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())"
ls "$WHEELS" | head -50

# --- 1. install (offline) --------------------------------------------------------------------
# import name -> wheel project, installed only when the import fails (asteroid always).
MISSING=$($PY - <<'PYEOF'
import importlib
needed = [  # what `import asteroid.models, twostep_asteroid` pulls in beyond torch, then the
    # training stack (not needed by the benchmark, installed when missing)
    ("typing_extensions", "typing_extensions"), ("packaging", "packaging"), ("numpy", "numpy"),
    ("tqdm", "tqdm"), ("idna", "idna"), ("certifi", "certifi"),
    ("charset_normalizer", "charset_normalizer"), ("urllib3", "urllib3"), ("requests", "requests"),
    ("filelock", "filelock"), ("fsspec", "fsspec"), ("yaml", "PyYAML"),
    ("huggingface_hub", "huggingface_hub"), ("pycparser", "pycparser"), ("cffi", "cffi"),
    ("soundfile", "soundfile"), ("pystoi", "pystoi"), ("torch_stoi", "torch_stoi"),
    ("lightning_utilities", "lightning_utilities"), ("torchmetrics", "torchmetrics==0.11.4"),
    ("pytorch_lightning", "pytorch_lightning"), ("pytorch_ranger", "pytorch_ranger"),
    ("torch_optimizer", "torch_optimizer"),
]
missing = []
for module, project in needed:
    try:
        importlib.import_module(module)
    except Exception:
        missing.append(project)
print(" ".join(missing + ["asteroid==0.7.0", "asteroid-filterbanks==0.4.0"]))
PYEOF
)
echo "to install: $MISSING"
if ! timeout 180 $PY -m pip install -q --no-deps --no-index --find-links "$WHEELS" $MISSING; then
    # One wheel without a match for this Python must not block the others.
    for project in $MISSING; do
        timeout 60 $PY -m pip install -q --no-deps --no-index --find-links "$WHEELS" "$project" \
            || echo "WARNING: could not install $project"
    done
fi
timeout 120 $PY -m pip install -q --no-deps --no-build-isolation -e . \
    || echo "WARNING: editable install failed; using PYTHONPATH"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

# Stand-ins (bench/gpu_stubs) only for modules that still do not import; none is on a timed path.
STUBS=$(mktemp -d)
for module in scipy.optimize soundfile torch_stoi; do
    if ! $PY -c "import $module" >/dev/null 2>&1; then
        top=${module%%.*}
        echo "STUB: $top (real package not importable here)"
        cp -r "$ROOT/bench/gpu_stubs/$top"* "$STUBS/"
        export PYTHONPATH="$PYTHONPATH:$STUBS"
    fi
done
$PY -c "import asteroid, asteroid.models, asteroid.losses, twostep_asteroid, bench.port_baseline; print('imports ok', asteroid.__version__)" \
    || { echo "FATAL: imports fail"; $PY -c "import asteroid.models"; exit 1; }
$PY -m pip list 2>/dev/null | grep -i -E "torch|asteroid|numpy|scipy|lightning" || true
elapsed
if [ "${1:-}" = "--install-only" ]; then
    $PY bench/run_bench.py --device cpu --tiny --threads 1 --mem none --tasks step2,infer \
        --out "$OUT/install_check.jsonl" | tail -n 12
    exit $?
fi

# --- 2. benchmarks ----------------------------------------------------------------------------
# Stages in order of priority, each with its own timeout, all within BUDGET seconds of the start.
BUDGET=${BUDGET:-470}
stage() {  # stage NAME MAX_SECONDS ARGS...
    local name=$1 max=$2; shift 2
    local left=$(( BUDGET - ($(date +%s) - T0) ))
    if [ "$left" -lt 30 ]; then echo "SKIP $name: ${left}s left"; return; fi
    [ "$max" -gt "$left" ] && max=$left
    timeout "$max" $PY bench/run_bench.py "$@" --out "$OUT/$name.jsonl" > "$OUT/$name.log" 2>&1
    echo "$name rc=$? (limit ${max}s)"; elapsed
}
# Training steps, CUDA, fp32 and bf16 autocast, batch 4 and 16 x 4 s; with the variants of ours.
stage cuda_train 150 --device cuda --tasks step1,step2,targets --ablations
# Inference RTF, CUDA, 10 s and 60 s, fp32 and bf16.
stage cuda_infer 80 --device cuda --tasks infer --ablations --infer-seconds 10,60 --warmup 2 --repeats 5
# CPU, quick sizes, on this machine's cores.
stage cpu_quick 100 --device cpu --quick
# Kernel micro-benchmarks, CUDA.
stage cuda_micro 40 --device cuda --tasks micro
# torch.compile of our masker, step 2 at batch 4 (first_call_s includes the compile time).
stage cuda_compile 90 --device cuda --tasks step2 --models ours --compile --step2-batches 4 --warmup 2 --repeats 10

# --- 3. tables --------------------------------------------------------------------------------
tail -n 5 "$OUT"/*.log
$PY bench/run_bench.py --table "$OUT"/*.jsonl | tee "$OUT/tables.md"
elapsed
