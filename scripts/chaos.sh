#!/usr/bin/env bash
# The long chaos run: an hour of virtual time at 30 nodes on many seeds, in
# release. Not part of CI (the default test run does four seeds for 30
# virtual minutes each).
#
#   scripts/chaos.sh                 # seeds 1-64, 60 virtual minutes each
#   SEEDS=1-500 MINUTES=120 scripts/chaos.sh
#   CHAOS_SEED=17 scripts/chaos.sh   # replay one seed (what a failure prints)
set -euo pipefail
cd "$(dirname "$0")/.."
export CHAOS_SEEDS="${SEEDS:-1-64}"
export CHAOS_MINUTES="${MINUTES:-60}"
export CHAOS_NODES="${NODES:-30}"
exec cargo test --release -p gossip-core --test chaos -- --nocapture
