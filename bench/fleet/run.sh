#!/usr/bin/env bash
# The fleet benchmark: N real `fpga-sync watch` agents (release build, `sim` backend, 2
# simulated cards each) against the local cloud, a rollout at `max_unavailable: 10%`.
# Prints the time from the commit to every host verified, the most hosts drained at once,
# and the Placement requests per host per idle pass. Runs the ignored test
# `fleet_rollout::fleet_benchmark` (tests/it/support/fleet.rs is the harness).
#
#   bench/fleet/run.sh            # 50 and 200 hosts
#   HOSTS="20" DEVICES=2 VERIFY=5 SETTLE=10 bench/fleet/run.sh   # SETTLE: idle seconds before
#                                                                 # the idle window
#
# Not part of the test suite: 200 agents take ~4 GB of memory and minutes of CPU.
set -euo pipefail
cd "$(dirname "$0")/../.."
export FPGA_SYNC_TEST_CLOUD_STATE=${FPGA_SYNC_TEST_CLOUD_STATE:-$PWD/target/local-cloud-test}
cargo build --release --locked --bin fpga-sync
export FPGA_SYNC_BIN=$PWD/target/release/fpga-sync
ulimit -n 65536 2>/dev/null || true
for n in ${HOSTS:-50 200}; do
  echo "== $n hosts"
  FLEET_HOSTS=$n FLEET_DEVICES=${DEVICES:-2} FLEET_VERIFY=${VERIFY:-5} FLEET_SETTLE=${SETTLE:-10} \
    cargo test --locked --test it -- --ignored --nocapture --exact fleet_rollout::fleet_benchmark 2>&1 \
    | grep -E '^(fleet of|all|idle|commit)|panicked|test result'
done
