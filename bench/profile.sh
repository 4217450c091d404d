#!/usr/bin/env bash
# CPU profile of the engine's hot path: instruction counts per function.
#
#   bench/profile.sh [NODES] [TOP]
#
# Builds bench/examples/sim_workload.rs in release with debug info for the
# workspace's own crates (dependencies keep the release profile as it is, so
# no cold rebuild of chitchat), runs it under `valgrind --tool=callgrind`
# (NODES nodes, default 100: join from one seed, a key spreads, then 10 s of
# virtual time more; a few minutes under callgrind on this machine), then
# prints the total instruction count (Ir) and the TOP (default 15) functions
# by inclusive and by self cost with `callgrind_annotate`.
#
# Instruction counts do not depend on how busy the machine is, so the
# figures of two commits compare even on a shared machine; bench/NOTES.md
# ("Profile (callgrind)") keeps a before/after pair made with this script.
#
# Output files (not in git, see .gitignore): target-profile/callgrind.out.N<NODES>
# and the annotated text beside it. Environment: CARGO_TARGET_DIR (default:
# target), JOBS (cargo -j, default 2).
set -euo pipefail

nodes="${1:-100}"
top="${2:-15}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
out="$root/target-profile"
mkdir -p "$out"

command -v valgrind >/dev/null || { echo "profile.sh: valgrind not found" >&2; exit 1; }

# Debug info (file:line) only for this workspace's crates.
debug=()
for p in gossip gossip-core gossip-storage gossip-bench; do
  debug+=(--config "profile.release.package.$p.debug=true")
done
CARGO_TARGET_DIR="$target" cargo build -j"${JOBS:-2}" --release -p gossip-bench \
  --example sim_workload "${debug[@]}"

bin="$target/release/examples/sim_workload"
cg="$out/callgrind.out.N$nodes"
echo "== valgrind --tool=callgrind $bin $nodes" >&2
start=$(date +%s)
valgrind --tool=callgrind --callgrind-out-file="$cg" "$bin" "$nodes"
echo "== callgrind took $(( $(date +%s) - start )) s" >&2

ann="$out/annotate.N$nodes.txt"
{
  echo "## commit $(git rev-parse --short HEAD), sim_workload $nodes"
  echo
  echo "### inclusive (top $top)"
  callgrind_annotate --inclusive=yes --threshold=100 "$cg" 2>/dev/null \
    | grep -E '^ *[0-9,]+ ' | grep -v 'PROGRAM TOTALS' | head -n "$top"
  echo
  echo "### self (top $top)"
  callgrind_annotate --inclusive=no --threshold=100 "$cg" 2>/dev/null \
    | grep -E '^ *[0-9,]+ ' | grep -v 'PROGRAM TOTALS' | head -n "$top"
} | tee "$ann"
echo
grep -m1 -E 'PROGRAM TOTALS' <(callgrind_annotate "$cg" 2>/dev/null) | sed 's/^/total Ir: /'
echo "(callgrind output: $cg; annotated: $ann)"
