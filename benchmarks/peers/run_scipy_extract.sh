#!/usr/bin/env bash
# Induced-subgraph extraction, ours vs scipy's A[idx][:, idx], on the same graph and batches
# in one run. Usage: benchmarks/peers/run_scipy_extract.sh BUILD_DIR [NODES]
set -euo pipefail
build=${1:?usage: $0 BUILD_DIR [NODES]}
nodes=${2:-200000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
IBMB_BENCH_NODES=$nodes IBMB_BENCH_EXPORT=$tmp \
  "$build/benchmarks/bench_store" --benchmark_filter='bm_extract|bm_induced' \
  --benchmark_format=json > "$tmp/ours.json"
# Any python3 with numpy + scipy (pip's or Debian's python3-scipy); PYTHON overrides.
PY=${PYTHON:-python3}
if ! "$PY" -c 'import numpy, scipy' 2>/dev/null && /usr/bin/python3 -c 'import numpy, scipy' 2>/dev/null; then
  PY=/usr/bin/python3
fi
"$PY" "$(dirname "$0")/scipy_extract.py" "$tmp" | tee "$tmp/scipy.json"
python3 - "$tmp/ours.json" "$tmp/scipy.json" <<'PY'
import json, sys
peer_last = open(sys.argv[2]).read().strip().splitlines()[-1]
if not peer_last.startswith("{"):
    sys.exit(0)  # the peer skipped (no scipy)
peer = json.loads(peer_last)["local_edges_per_s"]
print(f"{'scipy A[idx][:, idx] (1 thread)':44s} {peer/1e6:8.1f} M local edges/s")
names = {"bm_induced/1/real_time": "ours, subgraph_extractor, 1 thread",
         "bm_induced/2/real_time": "ours, subgraph_extractor, 2 threads",
         "bm_induced32/1/real_time": "ours, int32 column ids (as scipy), 1 thread",
         "bm_induced32/2/real_time": "ours, int32 column ids (as scipy), 2 threads",
         "bm_extract/1/real_time": "ours, materialize ids-only, 1 thread",
         "bm_extract/2/real_time": "ours, materialize ids-only, 2 threads"}
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    o = b["local_edges/s"]
    print(f"{names.get(b['name'], b['name']):44s} {o/1e6:8.1f} M local edges/s  {o/peer:5.1f}x scipy")
PY
