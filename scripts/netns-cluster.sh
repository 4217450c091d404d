#!/usr/bin/env bash
# A 20-node cluster of gossip-node processes, each in its own network
# namespace on one bridge, through every scenario of tests/netns.rs
# (formation by DNS, a cut link, a 10|10 partition and heal, 20% loss, a
# SIGKILL and restart, a rolling restart of all 20, a seed that moves to a
# new address under its DNS name). Not run by CI (it takes a few minutes); its figures are in
# BENCHMARKS.md. Needs root, iproute2 and nftables (installed if missing).
#
#   sudo scripts/netns-cluster.sh            # 20 nodes
#   NODES=10 sudo scripts/netns-cluster.sh   # another size
#   GOSSIP_NETNS_TOGETHER=1 sudo scripts/netns-cluster.sh   # all 20 started at once
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "netns-cluster: needs root (network namespaces)" >&2
    exit 1
fi
if ! command -v nft >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables >/dev/null
fi
export GOSSIP_NETNS_NODES="${NODES:-20}"
export GOSSIP_NETNS_REQUIRE_NFT=1
# BENCHMARKS.md's runs: 20% loss (CI's 5-node suite uses 10%).
export GOSSIP_NETNS_LOSS_PCT="${LOSS_PCT:-20}"
# A measurement: false deaths under loss are counted in the table, not fatal.
export GOSSIP_NETNS_COUNT_FALSE_DEATHS=1
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
cargo test -p gossip --test netns -- --nocapture --test-threads=1 netns_cluster_scenarios
