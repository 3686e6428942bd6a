#!/usr/bin/env bash
# Induced-subgraph extraction, ours vs scipy's A[idx][:, idx], on the same graph and batches
# in one run, with the floor under any per-batch extraction (bm_rows_read: the batches' rows
# read and nothing else). Usage: benchmarks/peers/run_scipy_extract.sh BUILD_DIR [NODES]
set -euo pipefail
build=${1:?usage: $0 BUILD_DIR [NODES]}
nodes=${2:-200000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
IBMB_BENCH_NODES=$nodes IBMB_BENCH_EXPORT=$tmp \
  "$build/benchmarks/bench_store" --benchmark_filter='bm_extract|bm_induced|bm_rows_read' \
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
         "bm_extract/2/real_time": "ours, materialize ids-only, 2 threads",
         "bm_rows_read/1/real_time": "floor: the batch rows read only, 1 thread",
         "bm_rows_read/2/real_time": "floor: the batch rows read only, 2 threads",
         "bm_rows_read32/1/real_time": "floor, int32 column ids, 1 thread",
         "bm_rows_read32/2/real_time": "floor, int32 column ids, 2 threads"}
ours = json.load(open(sys.argv[1]))["benchmarks"]
# The floor reads the rows and keeps nothing: its rate is the batches' local edges over its time.
edges = next(b["local_edges"] for b in ours if "local_edges" in b)
for b in ours:
    o = b.get("local_edges/s") or edges / (b["real_time"] * 1e-3)  # real_time in ms
    print(f"{names.get(b['name'], b['name']):44s} {o/1e6:8.1f} M local edges/s  {o/peer:5.1f}x scipy")
print("(a per-batch extraction reads every row of its batch: none can beat the floor's ratio)")
PY
