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
# PROFILE_AT=<commit> profiles the engine of another commit instead of the
# working tree: `git archive` of that commit into target-profile/src-<commit>
# (the repository itself is not touched), with this tree's
# bench/examples/sim_workload.rs copied in so the workload is the same, built
# into the same target directory (the dependencies are reused).
#
# WORKLOAD=sim_workload_monitored profiles the same workload with monitored
# liveness (Config::monitors 1); its outputs carry the workload's name.
#
# Output files (not in git, see .gitignore): target-profile/callgrind.out.N<NODES>
# (callgrind.out.<commit>.N<NODES> with PROFILE_AT) and the annotated text beside it.
# Environment: CARGO_TARGET_DIR (default: target), JOBS (cargo -j, default 2).
set -euo pipefail

nodes="${1:-100}"
top="${2:-15}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
out="$root/target-profile"
mkdir -p "$out"
src="$root"
tag="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- gossip-core gossip-storage bench/examples || echo +dirty)"
suffix=""
workload="${WORKLOAD:-sim_workload}"
if [ "$workload" != sim_workload ]; then
  suffix=".$workload"
fi
if [ -n "${PROFILE_AT:-}" ]; then
  tag="$(git rev-parse --short "$PROFILE_AT")"
  src="$out/src-$tag"
  rm -rf "$src"
  mkdir -p "$src"
  git archive "$tag" | tar -x -C "$src"
  cp "$root/bench/examples/sim_workload.rs" "$src/bench/examples/sim_workload.rs"
  suffix="$suffix.$tag"
fi

command -v valgrind >/dev/null || { echo "profile.sh: valgrind not found" >&2; exit 1; }

# Debug info (file:line) only for this workspace's crates.
debug=()
for p in gossip gossip-core gossip-storage gossip-bench; do
  debug+=(--config "profile.release.package.$p.debug=true")
done
(cd "$src" && CARGO_TARGET_DIR="$target" cargo build -j"${JOBS:-2}" --release -p gossip-bench \
  --example "$workload" "${debug[@]}")

# A copy: a build of another commit writes the same path.
bin="$out/sim_workload$suffix"
cp "$target/release/examples/$workload" "$bin"
cg="$out/callgrind.out$suffix.N$nodes"
echo "== valgrind --tool=callgrind $bin $nodes" >&2
start=$(date +%s)
valgrind --tool=callgrind --callgrind-out-file="$cg" "$bin" "$nodes" >&2
echo "== callgrind took $(( $(date +%s) - start )) s" >&2

ann="$out/annotate$suffix.N$nodes.txt"
callgrind_annotate --auto=no --inclusive=yes --threshold=100 "$cg" >"$out/inclusive$suffix.N$nodes.txt" 2>/dev/null
callgrind_annotate --auto=no --inclusive=no --threshold=100 "$cg" >"$out/self$suffix.N$nodes.txt" 2>/dev/null
# callgrind_annotate lists a function once per source file its instructions
# came from (inlining) and once more per object; fold those by function name
# (inclusive: the largest entry; self: the sum), drop the runtime's start-up
# frames, and print markdown tables.
python3 - "$out/inclusive$suffix.N$nodes.txt" "$out/self$suffix.N$nodes.txt" "$top" "$tag" "$nodes" "$workload" <<'PY' | tee "$ann"
import re, sys
inc_path, self_path, top, commit, nodes, workload = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
line = re.compile(r"^\s*([\d,]+) \(\s*([\d.]+)%\)\s+(.*)$")
skip = re.compile(r"\(below main\)|__libc_start|lang_start|__rust_begin_short_backtrace|^0x[0-9a-f]+$|^main$|::main$|^_start$|^\?\?\?$")
def read(path, fold):
    total, acc = None, {}
    for l in open(path, errors="replace"):
        m = line.match(l)
        if not m:
            continue
        ir, rest = int(m.group(1).replace(",", "")), m.group(3)
        if "=>" in rest or "events annotated" in rest:
            continue
        if "PROGRAM TOTALS" in rest:
            total = ir
            continue
        rest = re.sub(r"\s+\[[^\]]*\]$", "", rest)
        fn = rest.partition(":")[2] if ":" in rest else rest
        if skip.search(fn):
            continue
        acc[fn] = fold(acc.get(fn, 0), ir)
    return total, sorted(acc.items(), key=lambda kv: -kv[1])
total, inc = read(inc_path, max)
_, slf = read(self_path, lambda a, b: a + b)
g = lambda ir: f"{ir / 1e9:.3f} G" if ir >= 1e8 else f"{ir / 1e6:.1f} M"
pct = lambda ir: f"{100 * ir / total:.1f}%" if total else "-"
print(f"commit {commit}, `{workload} {nodes}`: total {total:,} Ir ({g(total or 0)})\n")
for title, rows in (("inclusive", inc), ("self", slf)):
    print(f"| function ({title}, top {top}) | Ir | share |\n|---|---|---|")
    for fn, ir in rows[:top]:
        fn = fn.replace("|", "\\|")
        print(f"| `{fn}` | {g(ir)} | {pct(ir)} |")
    print()
PY
echo "(callgrind output: $cg; annotated: $ann)"
