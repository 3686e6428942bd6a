#!/usr/bin/env bash
# Side-by-side run of our nodewise_ppr and PPRGo's numba push on the same generated graph,
# same alpha/eps/k/threads. Prints one JSON line per configuration with the speed ratio and
# the top-k agreement.
#
#   benchmarks/peers/run_pprgo.sh BUILD_DIR [NODES] [OUTPUTS]
#
# Needs: numpy, scipy, numba (installed into a venv under $IBMB_PEER_VENV, default
# /tmp/ibmb_peer_venv, if python3 cannot import them), and network access to download
# pprgo/ppr.py from GitHub into a temp dir (never committed), or PPRGO_PPR_PY=/path/to/ppr.py
# (a copy outside the repository). Without either: skips.
set -euo pipefail
BUILD=${1:?usage: run_pprgo.sh BUILD_DIR [NODES] [OUTPUTS]}
NODES=${2:-100000}
OUTPUTS=${3:-20000}
HERE=$(cd "$(dirname "$0")" && pwd)
BENCH="$BUILD/benchmarks/bench_push"
[ -x "$BENCH" ] || { echo "build bench_push first: cmake --build $BUILD --target bench_push"; exit 1; }

PY=python3
if ! $PY -c "import numpy, scipy, numba" 2>/dev/null; then
  VENV=${IBMB_PEER_VENV:-/tmp/ibmb_peer_venv}
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" || { echo "skip: cannot create a venv"; exit 0; }
  fi
  PY="$VENV/bin/python"
  if ! $PY -c "import numpy, scipy, numba" 2>/dev/null; then
    $PY -m pip install -q numpy scipy numba || { echo "skip: cannot install numpy/scipy/numba"; exit 0; }
  fi
fi

TMP=$(mktemp -d /tmp/ibmb_pprgo.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
URL=https://raw.githubusercontent.com/TUM-DAML/pprgo_pytorch/master/pprgo/ppr.py
if [ -n "${PPRGO_PPR_PY:-}" ]; then
  cp "$PPRGO_PPR_PY" "$TMP/ppr.py"   # an offline copy of the same file, kept outside the repo
elif ! $PY -c "import urllib.request,sys; open(sys.argv[2],'wb').write(urllib.request.urlopen(sys.argv[1], timeout=30).read())" \
     "$URL" "$TMP/ppr.py" 2>/dev/null; then
  echo "skip: could not download $URL (no network?)"; exit 0
fi
# numpy >= 1.24 removed np.int, which construct_sparse uses (not called here); harmless.

DATA="$TMP/data"
IBMB_BENCH_EXPORT="$DATA" IBMB_BENCH_NODES=$NODES IBMB_BENCH_OUTPUTS=$OUTPUTS "$BENCH"
for EPS in ${EPS_LIST:-2e-4 1e-5}; do
  for K in ${K_LIST:-16 64}; do
    for T in ${THREADS_LIST:-1 2}; do
      # The peer runs per configuration, ours per column-id width (64: the library's default
      # int64 graph; 32: int32 column ids, as PPRGo's scipy CSR has); each side is timed as
      # the best of REPEATS runs (default 3).
      for BITS in ${INDEX_BITS_LIST:-64 32}; do
        IBMB_BENCH_RUN="$DATA" IBMB_BENCH_NODES=$NODES IBMB_BENCH_OUTPUTS=$OUTPUTS \
          IBMB_EPS=$EPS IBMB_TOPK=$K IBMB_THREADS=$T IBMB_INDEX_BITS=$BITS IBMB_REPEATS=${REPEATS:-3} "$BENCH" \
          > "$TMP/ours$BITS.json"
      done
      for BITS in ${INDEX_BITS_LIST:-64 32}; do
        echo "nodes=$NODES ours=$(cat "$TMP/ours$BITS.json")"
      done
      echo -n "peer="
      $PY "$HERE/pprgo_push.py" "$TMP" "$DATA" --alpha 0.25 --eps "$EPS" --topk "$K" \
        --threads "$T" --repeats "${REPEATS:-3}" $(for BITS in ${INDEX_BITS_LIST:-64 32}; do echo --ours-json "$TMP/ours$BITS.json"; done)
    done
  done
done
