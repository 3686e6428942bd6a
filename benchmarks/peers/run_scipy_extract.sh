#!/usr/bin/env bash
# Induced-subgraph extraction, ours vs scipy's A[idx][:, idx], on the same graph and batches
# in one run. Usage: benchmarks/peers/run_scipy_extract.sh BUILD_DIR [NODES]
set -euo pipefail
build=${1:?usage: $0 BUILD_DIR [NODES]}
nodes=${2:-200000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
IBMB_BENCH_NODES=$nodes IBMB_BENCH_EXPORT=$tmp OMP_NUM_THREADS=1 \
  "$build/benchmarks/bench_store" --benchmark_filter='bm_extract/1' --benchmark_format=json \
  > "$tmp/ours.json"
# Any python3 with numpy + scipy (pip's or Debian's python3-scipy); PYTHON overrides.
PY=${PYTHON:-python3}
if ! "$PY" -c 'import numpy, scipy' 2>/dev/null && /usr/bin/python3 -c 'import numpy, scipy' 2>/dev/null; then
  PY=/usr/bin/python3
fi
"$PY" "$(dirname "$0")/scipy_extract.py" "$tmp" | tee "$tmp/scipy.json"
python3 - "$tmp/ours.json" "$tmp/scipy.json" <<'PY'
import json, sys
ours = json.load(open(sys.argv[1]))["benchmarks"][0]
last = open(sys.argv[2]).read().strip().splitlines()[-1]
if not last.startswith("{"):
    sys.exit(0)  # the peer skipped (no scipy)
peer = json.loads(last)
o = ours["local_edges/s"]
print(f"ours (materialize ids-only, 1 thread): {o/1e6:.1f} M local edges/s")
print(f"scipy A[idx][:, idx]:                 {peer['local_edges_per_s']/1e6:.1f} M local edges/s")
print(f"ratio: {o / peer['local_edges_per_s']:.1f}x")
PY
