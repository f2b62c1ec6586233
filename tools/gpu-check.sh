#!/usr/bin/env bash
# tools/gpu-check.sh: the checks of asiarch that need an NVIDIA GPU, in one run of under ten
# minutes on a machine that has a GPU, a CUDA PyTorch, a compiler, CMake and Ninja, but perhaps
# not the Debian libraries asiarch links. It builds asiarch against that PyTorch's libtorch, then:
#   1. the kernel parity tests on CUDA against CPU float64 references (ctest label cuda);
#   2. asiarch bench kernels --device cuda (fused column = chunkwise form, against op by op);
#   3. asiarch bench train --device cuda at scenarios/gpu.toml's sizes;
#   4. DeltaNet's LM in float32 and in bfloat16 on the GPU, each run twice: bit-identical runs;
#   5. a three-experiment live campaign with device = "cuda", then replay and check.
# It prints one summary line per check (PASS or FAIL, with the figure), keeps every log in the
# output folder, and exits 0 only when every check passed.
#
# Usage: tools/gpu-check.sh [--out DIR] [--build-dir DIR] [--prefix DIR] [--jobs N]
#        tools/gpu-check.sh --print-debs
#   --prefix DIR   Debian packages unpacked there (see below) stand in for the missing ones.
#   --print-debs   prints how to fetch those packages on a Debian bookworm machine, and exits.
#
# A machine without the Debian libraries: on a Debian bookworm (amd64) machine with network run
# `tools/gpu-check.sh --print-debs` and the command it prints, which downloads the .deb files into
# debs/. Copy that folder to the GPU machine and unpack it into a prefix of its own (never into /,
# whose libraries it would replace):
#   for f in debs/*.deb; do dpkg -x "$f" /opt/asiarch-deps; done
#   tools/gpu-check.sh --prefix /opt/asiarch-deps
set -uo pipefail

OUT=gpu-check
BUILD=build-cuda
PREFIX=
JOBS=$(nproc)
# What asiarch builds against, beyond a compiler, CMake, Ninja and libtorch (the Makefile's list,
# less the tools of `make demo`), with the runtime libraries those -dev packages point to. BLAS
# and LAPACK (for faiss) come from OpenBLAS's own folder, which --prefix puts on the library path.
DEBS="capnproto libcapnp-dev libcapnp-0.9.2 libcaf-dev libcaf-core0.17 libcaf-io0.17 libcaf-openssl0.17 libssl-dev \
liblmdb-dev liblmdb0 libfaiss-dev libspdlog-dev libspdlog1.10 libfmt-dev libfmt9 catch2 libcli11-dev \
libtomlplusplus-dev libtomlplusplus3 libmimalloc-dev libmimalloc2.0 libcurl4-openssl-dev libcurl4 nlohmann-json3-dev \
zlib1g-dev libopenblas0-pthread libgomp1 dict-gcide"

while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=$2; shift 2 ;;
    --build-dir) BUILD=$2; shift 2 ;;
    --prefix) PREFIX=$(cd "$2" && pwd); shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    --print-debs)
      echo "mkdir -p debs && cd debs && apt-get download $DEBS"
      exit 0 ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu-check: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

cd "$(dirname "$0")/.." || exit 2
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
started=$(date +%s)
failures=0
summary=()

# One line per check: NAME, PASS or FAIL, what was measured.
report() {
  summary+=("$(printf '%-8s %-4s %s' "$1" "$2" "$3")")
  [ "$2" = PASS ] || failures=$((failures + 1))
  echo "gpu-check: $1 $2 $3"
}

finish() {
  echo
  echo "gpu-check summary ($(( $(date +%s) - started )) s; logs in $OUT):"
  printf '%s\n' "${summary[@]}"
  [ "$failures" -eq 0 ]
  exit $?
}

if [ -n "$PREFIX" ]; then
  export PATH="$PREFIX/usr/bin:$PATH"
  export CMAKE_PREFIX_PATH="$PREFIX/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  export LD_LIBRARY_PATH="$PREFIX/usr/lib/x86_64-linux-gnu:$PREFIX/usr/lib/x86_64-linux-gnu/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export CPATH="$PREFIX/usr/include${CPATH:+:$CPATH}"
  export LIBRARY_PATH="$PREFIX/usr/lib/x86_64-linux-gnu${LIBRARY_PATH:+:$LIBRARY_PATH}"
fi
# The LM corpus: Debian's dict-gcide, installed or unpacked in the prefix.
CORPUS=/usr/share/dictd/gcide.dict.dz
[ -n "$PREFIX" ] && [ -f "$PREFIX$CORPUS" ] && CORPUS=$PREFIX$CORPUS

# ---- the machine ----
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
if [ -z "$gpu" ]; then
  report machine FAIL "nvidia-smi sees no GPU: run this where one is"
  finish
fi
torch_line=$(python3 -c 'import torch; print(torch.__version__, torch.cuda.is_available(), torch._C._GLIBCXX_USE_CXX11_ABI, torch.utils.cmake_prefix_path)' 2>"$OUT/torch.log")
read -r torch_version cuda_ok abi_ok cmake_prefix <<<"$torch_line"
if [ "${cuda_ok:-}" != True ]; then
  report machine FAIL "python3 has no PyTorch that sees the GPU ($(tail -1 "$OUT/torch.log"))"
  finish
fi
if [ "$abi_ok" != True ]; then
  report machine FAIL "torch $torch_version uses the pre-C++11 ABI; asiarch needs a libtorch built with the C++11 ABI (PyTorch's wheels from 2.7 on)"
  finish
fi
for tool in cmake ninja c++ nvcc; do
  command -v "$tool" >/dev/null || { report machine FAIL "$tool is missing"; finish; }
done
[ -f "$CORPUS" ] || { report machine FAIL "no LM corpus at $CORPUS: carry dict-gcide (--print-debs) and pass --prefix"; finish; }
report machine PASS "$gpu, torch $torch_version, $(nvcc --version | sed -n 's/.*release \([0-9.]*\).*/CUDA \1/p')"

# ---- the build ----
# Only what the checks use: no bench/ (Google Benchmark), no fuzz targets.
if ! cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTorch_DIR="$cmake_prefix/Torch" \
      -DASIARCH_FOLDERS="messages;storage;lang;kernels;training;export;torch_plugin;retrieval;scenario;oracles;actors;llm;remote;campaign;tools" \
      >"$OUT/configure.log" 2>&1; then
  report build FAIL "cmake failed: $(grep -m1 -A2 'Error' "$OUT/configure.log" | tr '\n' ' ' | cut -c1-300) (with missing Debian packages: --print-debs)"
  finish
fi
if ! grep -q "^C10_CUDA_LIBRARY:FILEPATH=/" "$BUILD/CMakeCache.txt"; then
  report build FAIL "the libtorch in $cmake_prefix/Torch has no c10_cuda: it is not a CUDA build"
  finish
fi
build_start=$(date +%s)
if ! cmake --build "$BUILD" -j "$JOBS" --target asiarch asiarch_torch test_kernels test_device >"$OUT/build.log" 2>&1; then
  report build FAIL "see $OUT/build.log: $(grep -m1 'error' "$OUT/build.log" | cut -c1-300)"
  finish
fi
report build PASS "$(( $(date +%s) - build_start )) s with $JOBS jobs, against $cmake_prefix/Torch"
ASIARCH=$BUILD/tools/asiarch

# ---- 1. kernel parity on CUDA ----
if "$BUILD/tests/test_kernels" "[cuda]" >"$OUT/parity.log" 2>&1 && "$BUILD/tests/test_device" >>"$OUT/parity.log" 2>&1; then
  report parity PASS "$(grep -m1 'All tests passed' "$OUT/parity.log" | sed 's/All tests passed //')"
else
  report parity FAIL "see $OUT/parity.log: $(grep -m1 -B2 'FAILED\|failed' "$OUT/parity.log" | tr '\n' ' ' | cut -c1-300)"
fi

# ---- 2. kernels on the GPU against the op-by-op forms ----
if "$ASIARCH" bench kernels --device cuda --json >"$OUT/kernels.json" 2>"$OUT/kernels.log"; then
  report kernels PASS "$(python3 -c '
import json, sys
rows = json.load(open(sys.argv[1]))
print("; ".join("%s/%d %.3gM tok/s (%.1fx op-by-op)" % (r["name"], r["head_size"], r["chunkwise_tokens_per_second"] / 1e6,
      r["chunkwise_tokens_per_second"] / r["reference_tokens_per_second"]) for r in rows if r["head_size"] == 64))' "$OUT/kernels.json")"
else
  report kernels FAIL "see $OUT/kernels.log: $(tail -1 "$OUT/kernels.log" | cut -c1-300)"
fi

# The shipped scenarios with the corpus found above.
with_corpus() { sed "/^\[task.lm\]/a corpus = \"$CORPUS\"" "$1"; }

# ---- 3. training throughput at gpu.toml's sizes ----
with_corpus scenarios/gpu.toml >"$OUT/gpu-sizes.toml"
if "$ASIARCH" bench train --device cuda --scenario "$OUT/gpu-sizes.toml" --steps 30 --experiment-steps 30 --json \
      >"$OUT/train.json" 2>"$OUT/train.log"; then
  report train PASS "$(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
rows = {(t["fidelity"], t["program"]): t for t in r["throughput"]}
d = rows[("explore", "deltanet")]
print("deltanet at gpu.toml explore: %.0f tokens/s (%.2fx softmax attention); verify %.0f tokens/s" % (
      d["tokens_per_second"], d["vs_softmax"], rows[("verify", "deltanet")]["tokens_per_second"]))' "$OUT/train.json")"
else
  report train FAIL "see $OUT/train.log: $(tail -1 "$OUT/train.log" | cut -c1-300)"
fi

# ---- 4. the same seed twice gives the same bits on the GPU, in float32 and in bfloat16 ----
precision_line=""
precision_ok=1
for dtype in float32 bfloat16; do
  for round in 1 2; do
    "$ASIARCH" train deltanet --task lm --steps 100 --device cuda --dtype "$dtype" --corpus "$CORPUS" --json \
      >"$OUT/train-$dtype-$round.json" 2>>"$OUT/precision.log" || precision_ok=0
  done
  read -r same tps loss <<<"$(python3 -c '
import json, sys
a, b = (json.loads(open(f).read().strip().splitlines()[-1]) for f in sys.argv[1:])
print(a["loss"] == b["loss"] and a["status"] == "ok", round(a["tokens_per_second"]), a["bits_per_byte"])' \
    "$OUT/train-$dtype-1.json" "$OUT/train-$dtype-2.json" 2>>"$OUT/precision.log")"
  [ "$same" = True ] || precision_ok=0
  precision_line+="$dtype ${tps:-?} tokens/s, ${loss:-?} bits per byte, runs identical: ${same:-?}; "
done
if [ "$precision_ok" = 1 ]; then report precision PASS "$precision_line"; else report precision FAIL "$precision_line(see $OUT/precision.log)"; fi

# ---- 5. a live campaign on the GPU, replayed and checked ----
campaign_scenario="$OUT/gpu-smoke.toml"
# quickstart's campaign, three experiments, on the GPU.
sed -e 's/^name = "quickstart"/name = "gpu-smoke"/' -e 's/^max_experiments = .*/max_experiments = 3/' \
    -e 's/^gpu_slots = .*/gpu_slots = 1/' -e 's/^steps = 1000/steps = 200/' scenarios/quickstart.toml | with_corpus /dev/stdin >"$campaign_scenario"
printf 'device = "cuda"\n' >>"$campaign_scenario"
rm -rf "$OUT/run"
if "$ASIARCH" run "$campaign_scenario" --out "$OUT/run" >"$OUT/campaign.log" 2>&1 \
    && "$ASIARCH" replay "$OUT/run" >>"$OUT/campaign.log" 2>&1 \
    && "$ASIARCH" check "$OUT/run" >>"$OUT/campaign.log" 2>&1; then
  report campaign PASS "3 experiments on cuda, replayed and checked; digest $(grep -m1 '^digest' "$OUT/campaign.log" | cut -c9-24)"
else
  report campaign FAIL "see $OUT/campaign.log: $(tail -1 "$OUT/campaign.log" | cut -c1-300)"
fi

finish
