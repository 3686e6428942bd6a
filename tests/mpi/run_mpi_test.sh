#!/usr/bin/env bash
# ibmb train as 2 MPI ranks vs the same run as 2 worker threads in one process: the
# per-epoch losses and accuracies, the test accuracies and the staleness audits must be
# equal (bit for bit: every rank combines the same per-worker results in worker order, as
# the threaded run does; see docs/history.md). Also: rank 0 alone writes files, and an error
# on the ranks is one line of ours, a non-zero exit and no hang.
#
# usage: tests/mpi/run_mpi_test.sh path/to/ibmb [work-dir]
set -euo pipefail

ibmb=${1:?usage: run_mpi_test.sh path/to/ibmb [work-dir]}
ibmb=$(realpath "$ibmb")
work=${2:-$(mktemp -d)}
mkdir -p "$work"
cd "$work"
rm -f r_mpi.json r_thr.json s_mpi.csv s_thr.csv err.txt
mpirun=(mpirun --oversubscribe --allow-run-as-root -np 2)
data=synthetic:nodes=5000,seed=1
# Small batches so both workers own several (the default makes one batch at this size).
common=(train --data "$data" --history sat --epochs 3 --seed 1 --batch-size 64)
export OMP_NUM_THREADS=1

fail() { echo "run_mpi_test: FAIL: $*" >&2; exit 1; }

rc=0
"${mpirun[@]}" "$ibmb" "${common[@]}" --partitions 2 --report r_mpi.json --staleness-report s_mpi.csv --audit-every 1 \
  > mpi.out 2>&1 || rc=$?
[[ $rc == 0 ]] || { cat mpi.out >&2; fail "mpirun exited with $rc"; }
"$ibmb" "${common[@]}" --workers 2 --partitions 2 --report r_thr.json --staleness-report s_thr.csv \
  --audit-every 1 \
  > thr.out 2>&1 || { cat thr.out >&2; fail "the threaded run failed"; }

grep -q '"mpi_ranks": 2' r_mpi.json || fail "r_mpi.json does not say mpi_ranks 2"
grep -q '"mpi_ranks": 1' r_thr.json || fail "r_thr.json does not say mpi_ranks 1"
# Rank 1 prints nothing: one header line, not two.
[[ $(grep -c '^train ' mpi.out) == 1 ]] || fail "more than one rank printed (mpi.out)"

# Compare every number except timings and the fields that name the run's layout.
python3 - r_mpi.json r_thr.json <<'PY' || fail "reports differ"
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
skip_key = lambda k: ("seconds" in k or k in ("peak_rss_bytes", "workers", "mpi_ranks"))
def cmp(x, y, path):
    if isinstance(x, dict):
        assert set(x) == set(y), f"{path}: keys {sorted(set(x) ^ set(y))}"
        for k in x:
            if not skip_key(k):
                cmp(x[k], y[k], f"{path}.{k}")
    elif isinstance(x, list):
        assert len(x) == len(y), f"{path}: {len(x)} vs {len(y)} entries"
        for i, (u, v) in enumerate(zip(x, y)):
            cmp(u, v, f"{path}[{i}]")
    else:
        assert x == y, f"{path}: mpi {x!r} vs threads {y!r}"
cmp(a, b, "report")
assert len(a["epochs"]) == 3, "expected 3 epochs"
assert a["history"]["halo_rows_read"] > 0, "no halo rows were read"
wb = [l for l in open("mpi.out") if l.startswith("history ")][0]
per_worker = [int(x) for x in wb.split("batches per worker")[1].split(",")[0].split()]
assert len(per_worker) == 2 and min(per_worker) >= 2, f"batches per worker {per_worker}"
assert len(a["audits"]) > 0, "no audits"
print("run_mpi_test: reports equal;", ", ".join(
    f"epoch {e['epoch']} loss {e['loss']:.6f} val {e['val_accuracy']:.4f}" for e in a["epochs"]))
PY
# The staleness CSVs, without the time column if any, are identical.
cmp -s s_mpi.csv s_thr.csv || fail "staleness CSVs differ"

# Errors: a bad --data on every rank is one line of ours and a non-zero exit, no hang.
if timeout 120 "${mpirun[@]}" "$ibmb" train --data synthetic:nodes=-5 --history sat \
    --epochs 1 --report bad.json > err.txt 2>&1; then
  fail "a bad --data exited 0"
fi
[[ $(grep -c '^ibmb: error:' err.txt) -ge 1 ]] || { cat err.txt >&2; fail "no error line"; }
[[ ! -e bad.json ]] || fail "bad.json was written"
# More ranks than partitions is refused the same way.
if timeout 120 "${mpirun[@]}" "$ibmb" "${common[@]}" --partitions 1 --report bad.json \
    > err2.txt 2>&1; then
  fail "--partitions 1 under 2 ranks exited 0"
fi
grep -q 'partition(s) for 2 processes' err2.txt || { cat err2.txt >&2; fail "no partitions error"; }
echo "run_mpi_test: OK"
