#!/usr/bin/env bash
# The swarm bench: `herd bench swarm` at several agent counts, on the embedded broker and on
# Mosquitto, in a release build; prints one table of every run (JSON of each in $OUT).
#
#   bench/swarm.sh                     # N = 100 1000 5000 10000, 20 s each
#   AGENTS="100 1000" SECONDS_=30 bench/swarm.sh
#   BROKERS=embedded bench/swarm.sh    # skip Mosquitto
set -euo pipefail
cd "$(dirname "$0")/.."
AGENTS=${AGENTS:-"100 1000 5000 10000"}
SECS=${SECONDS_:-20}
BROKERS=${BROKERS:-"embedded mosquitto"}
OUT=${OUT:-$(mktemp -d /tmp/herd-swarm.XXXXXX)}
HERD=${HERD:-target/release/herd}

# Every simulated agent is a socket in the agents' process and one in the broker's.
ulimit -n "$(ulimit -Hn)"
[ -n "${HERD_SKIP_BUILD:-}" ] || nice -n 5 cargo build --release -p herd

mosquitto_pid=
# max_inflight_messages: the coordinator acknowledges an agent's message only once its effect is
# stored (one flush covers every message that came before it), so Mosquitto's default window of
# 20 unacknowledged messages per client caps the coordinator at 20 messages per flush: at 5,000
# agents (10,000 messages a second) it fell minutes behind and lost frames.
# utime + stime of Mosquitto, in clock ticks (0 without it).
mosquitto_ticks() {
  [ -n "$mosquitto_pid" ] && [ -r "/proc/$mosquitto_pid/stat" ] || { echo 0; return; }
  sed 's/.*) //' "/proc/$mosquitto_pid/stat" | awk '{print $12 + $13}'
}
cleanup() { [ -z "$mosquitto_pid" ] || kill "$mosquitto_pid" 2>/dev/null || true; }
trap cleanup EXIT
if [[ " $BROKERS " == *" mosquitto "* ]]; then
  command -v mosquitto >/dev/null || { echo "mosquitto is not installed (apt-get install mosquitto)" >&2; exit 1; }
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat >"$OUT/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 100000
max_inflight_messages 10000
log_dest none
CONF
  mosquitto -c "$OUT/mosquitto.conf" & mosquitto_pid=$!
  sleep 0.5
fi

for n in $AGENTS; do
  for b in $BROKERS; do
    args=(bench swarm --agents "$n" --seconds "$SECS" --json "$OUT/$b-$n.json")
    [ "$b" = embedded ] || args+=(--broker "mqtt://127.0.0.1:$port")
    echo "== $n agents, $b broker (load average: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    # Mosquitto's own CPU during the run (the embedded broker's is measured by the bench itself).
    t0=$(mosquitto_ticks); s0=$(date +%s.%N)
    "$HERD" "${args[@]}" >&2 || echo "   (exit $?: see above)" >&2
    t1=$(mosquitto_ticks); s1=$(date +%s.%N)
    if [ "$b" = mosquitto ] && [ -f "$OUT/$b-$n.json" ]; then
      python3 - "$OUT/$b-$n.json" "$t0" "$t1" "$s0" "$s1" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import json, sys
path, t0, t1, s0, s1, load = sys.argv[1], *map(float, sys.argv[2:6]), sys.argv[6]
r = json.load(open(path))
# The bench's wall time starts once the agents are launched; the script's covers the whole command.
r["mosquitto_cpu_cores"] = round((t1 - t0) / 100 / (s1 - s0), 3)
r["load_average_end"] = load
json.dump(r, open(path, "w"))
PY
    fi
  done
done

python3 - "$OUT" <<'PY'
import json, pathlib, sys
rows = []
for p in sorted(pathlib.Path(sys.argv[1]).glob("*.json"), key=lambda p: (json.loads(p.read_text())["agents"], p.name)):
    rows.append(json.loads(p.read_text()))
d = lambda v: f'{v["p50"]}/{v["p99"]}/{v["max"]}'
pair = lambda v: f'{v["p50"]}/{v["p99"]}' if v else ""
print(f'{"agents":>6} {"broker":<9} {"coord cpu":>9} {"brk cpu":>7} {"swarm cpu":>9} {"us/frame":>8} {"rss MB":>7} {"frames/s":>8} {"lost":>4} {"dbl":>4} {"live lag ms p50/p99/max":>24} {"frame→broker ms p50/p99":>23} {"start skew ms p50/p99/max":>26} {"B/agent-s":>9} {"rss 1min/end MB":>15} {"MB/min":>6} {"state":<10}')
for r in rows:
    broker = "embedded" if r["broker"] == "embedded" else "mosquitto"
    print(f'{r["agents"]:>6} {broker:<9} {r["coordinator_cpu_cores"]:>9} {r.get("mosquitto_cpu_cores", r["embedded_broker_cpu_cores"]):>7} {r.get("swarm_cpu_cores", ""):>9} {r.get("coordinator_cpu_us_per_frame", ""):>8} {r["coordinator_rss_mb"]:>7} {r["frames_per_s"]:>8} {r["frames_lost"]:>4} {r["frames_doubled"]:>4} {d(r["live_lag_ms"]):>24} {pair(r.get("swarm_frame_ack_lag_ms")):>23} {d(r["start_skew_ms"]):>26} {r["broker_bytes_per_agent_second"]:>9} {str(r.get("coordinator_rss_mb_after_first_minute"))+"/"+str(r.get("coordinator_rss_mb_end")):>15} {r.get("coordinator_rss_growth_mb_per_min",""):>6} {r["run_state"]:<10}')
PY
echo "(JSON in $OUT)" >&2
