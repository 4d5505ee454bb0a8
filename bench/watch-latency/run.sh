#!/usr/bin/env bash
# Latency of `fpga-sync watch`: the time from `git commit` (a new bitstream assigned to a
# region) to the status file showing that region programmed with it, read back
# (verified) and reported to Placement — with a local checkout (file notifications) and
# with a remote (`--poll`). Uses the local cloud and the `sim` backend.
#
#   bench/watch-latency/run.sh [RUNS]     (default 5 runs per mode)
#
# Env: FPGA_SYNC_BENCH_CLOUD_STATE (default target/tmp/local-cloud, the tests' cloud,
# started when down), OS_CLOUD (default local-noauth: the compute node is made in its Placement), POLL (default 5),
# FPGA_SYNC (default target/release/fpga-sync, built when missing).
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-5}
poll=${POLL:-5}
state=${FPGA_SYNC_BENCH_CLOUD_STATE:-$PWD/target/tmp/local-cloud}
cloud=scripts/local-cloud/local-cloud
fpga_sync=${FPGA_SYNC:-$PWD/target/release/fpga-sync}
[ -x "$fpga_sync" ] || cargo build --release --locked --quiet

if ! "$cloud" status "$state" > /dev/null 2>&1; then
    echo "== starting the local cloud in $state" >&2
    "$cloud" start --auth both "$state" > /dev/null
fi
export OS_CLIENT_CONFIG_FILE=$state/clouds.yaml OS_CLIENT_SECURE_FILE=$state/secure.yaml
export OS_CLOUD=${OS_CLOUD:-local-noauth}
placement_url=$(grep '^FPGA_SYNC_CLOUD_NOAUTH_PLACEMENT_URL=' "$state/env" | cut -d= -f2-)
noauth_token=$(grep '^FPGA_SYNC_CLOUD_NOAUTH_TOKEN=' "$state/env" | cut -d= -f2-)

work=$(mktemp -d)
watch_pid=
cleanup() {
    [ -n "$watch_pid" ] && kill -TERM "$watch_pid" 2> /dev/null && wait "$watch_pid" 2> /dev/null
    rm -rf "$work"
}
trap cleanup EXIT

token=$(printf 'WL_%012X' $((RANDOM * RANDOM * RANDOM)))
lower=$(echo "$token" | tr '[:upper:]' '[:lower:]')
host=$(echo "$lower" | tr "_" "-")
export FPGA_SYNC_SITE=$token FPGA_SYNC_CACHE_DIR=$work/source-cache
address=0000:5e:00.0
uuid() { printf '%08x-0000-4000-8000-%012x' $((16#${lower: -8})) "$1"; }

# The site repository: a shell pinned on the card and two AFUs for region 0.
repo=$work/site
mkdir -p "$repo/state/files"
echo "shell $token" > "$repo/state/files/shell.bin"
echo "afu one $token" > "$repo/state/files/afu1.bin"
echo "afu two $token" > "$repo/state/files/afu2.bin"
afu() {
    cat << DOC
---
apiVersion: fpga-sync/v1
kind: Bitstream
name: $1-$lower
file: files/$1.bin
metadata:
  bs-name: $1
  bs-uuid: $(uuid "$2")
  vendor: Intel
  board: PAC-A10
  shell_id: $(uuid 1)
  version: "1.0"
  driver_ver: "2.1"
  driver_path: /opt/opae
  function_uuid: $(uuid "$3")
DOC
}
{
    cat << DOC
apiVersion: fpga-sync/v1
kind: Bitstream
name: shell-$lower
file: files/shell.bin
metadata:
  bs-name: shell
  bs-uuid: $(uuid 1)
  vendor: Intel
  board: PAC-A10
  version: "1.0"
  driver_ver: "2.1"
  driver_path: /opt/opae
  function_uuid: $(uuid 2)
DOC
    afu afu1 3 4
    afu afu2 5 6
} > "$repo/state/bitstreams.yaml"
assign() {
    cat > "$repo/state/hosts.yaml" << DOC
apiVersion: fpga-sync/v1
kind: HostGroup
name: bench
hosts: [$host]
backend: sim
devices:
  - address: "$address"
    region: "0"
    bitstream: $1-$lower
    shell: shell-$lower
DOC
}
assign afu1
git -C "$repo" init -q
git -C "$repo" -c user.name=bench -c user.email=bench@invalid add -A
git -C "$repo" -c user.name=bench -c user.email=bench@invalid commit -qm initial

# The simulated card: the shell loaded (an opaque image's id is its sha256's first 128
# bits), region 0 empty.
sim=$work/sim
dev=$sim/devices/$address
mkdir -p "$dev/regions/0"
printf '0x8086\n' > "$dev/vendor"
printf '0x09c4\n' > "$dev/device"
sha256sum "$repo/state/files/shell.bin" | cut -c1-32 > "$dev/bitstream_id"
echo 0 > "$dev/busy"
: > "$dev/regions/0/afu_id"
echo 0 > "$dev/regions/0/busy"

# Central apply uploads the images; the compute node stands in for nova-compute's.
"$fpga_sync" apply --repo "$repo" --dir state --auto-approve > "$work/central.log" 2>&1 ||
    { cat "$work/central.log"; exit 1; }
curl -fsS -X POST "$placement_url/resource_providers" -H "X-Auth-Token: $noauth_token" \
    -H 'OpenStack-API-Version: placement 1.20' -H 'Content-Type: application/json' \
    -d "{\"name\": \"$host\"}" > /dev/null

status=$work/status.json
# Waits until the status file shows region 0 verified with bitstream $1; prints the
# seconds since $2 (a `date +%s.%N`).
wait_verified() {
    python3 - "$status" "$1" "$2" << 'PY'
import json, sys, time
path, want, since = sys.argv[1], sys.argv[2], float(sys.argv[3])
deadline = time.time() + 120
while time.time() < deadline:
    try:
        s = json.load(open(path))
        if s.get("error") is None and any(
            x["slot"].get("region") == "0" and x["state"] == "verified" and x["bitstream"] == want
            for x in s["slots"]
        ):
            print(f"{time.time() - since:.3f}")
            sys.exit(0)
    except (OSError, ValueError, KeyError):
        pass
    time.sleep(0.01)
sys.exit("timed out")
PY
}

# mode: local|remote
measure() {
    local mode=$1 source
    if [ "$mode" = local ]; then source=$repo; else source=file://$repo; fi
    rm -f "$status"
    "$fpga_sync" watch --repo "$source" --dir state --host "$host" \
        --state-dir "$work/agent" --sim-root "$sim" --status-file "$status" \
        --poll "$poll" --debounce 200 --verify-every 3600 --log-format json \
        2> "$work/watch-$mode.log" &
    watch_pid=$!
    local current
    # The startup pass converges on what is committed.
    current=$(sed -n 's/^    bitstream: \(.*\)$/\1/p' "$repo/state/hosts.yaml")
    wait_verified "$current" "$(date +%s.%N)" > /dev/null ||
        { tail -20 "$work/watch-$mode.log"; exit 1; }
    local out=()
    for i in $(seq "$runs"); do
        local next=afu1
        [ "$current" = "afu1-$lower" ] && next=afu2
        assign "$next"
        # Not on a poll boundary: start each remote run at a random point of the cycle.
        [ "$mode" = remote ] && sleep "$(python3 -c "import random;print(random.uniform(0,$poll))")"
        local t0
        t0=$(date +%s.%N)
        git -C "$repo" -c user.name=bench -c user.email=bench@invalid commit -qam "run $i"
        out+=("$(wait_verified "$next-$lower" "$t0")")
        current=$next-$lower
        sleep 1
    done
    kill -TERM "$watch_pid"
    wait "$watch_pid"
    watch_pid=
    printf '%s\n' "${out[@]}" | python3 -c "
import sys, statistics
xs = [float(l) for l in sys.stdin if l.strip()]
print(f'$mode: runs={len(xs)} median={statistics.median(xs):.3f}s max={max(xs):.3f}s all=' + ' '.join(f'{x:.3f}' for x in xs))
"
}

echo "fpga-sync watch latency: commit -> region programmed, verified, reported (status file)"
echo "binary: $fpga_sync; cloud: $OS_CLOUD; poll: ${poll}s (+ up to 20% jitter); debounce: 200 ms"
measure local
measure remote
