#!/usr/bin/env bash
# Multi-node training, as far as one machine can show it: two Linux network namespaces joined by
# a veth pair act as two nodes (10.231.0.1 and 10.231.0.2), each with its own `halo-clip launch`
# of 2 processes (Gloo on CPU); node 0 serves the rendezvous on 10.231.0.1. Checks that
#   1. the 2 nodes x 2 processes job trains to the result of one process on the same global
#      batches (the tiny preset on a small generated data set, 40 steps of 16 pairs);
#   2. SIGKILL to node 1's launcher stops node 0's launcher within 10 s, naming node 1;
#   3. with --max-restarts, node 0 restarts its workers when node 1 vanishes, and the job
#      finishes once node 1's launcher is started again.
# Needs root (ip netns, iproute2). Where network namespaces cannot be made it prints one line
# saying why it skips and exits 0. Traffic goes only to the namespaces' own addresses; the
# namespaces (and their veth pair) are removed at the end, also when interrupted.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/multinode_check.sh [--binary PATH] [--work DIR] [--keep]

Runs halo-clip as two nodes in two network namespaces on this machine and checks that the
2 x 2 job matches one process, that a killed node stops the other within 10 s with a message
naming it, and that --max-restarts recovers when the node is started again. About 20-30 s on
2 cores. Needs root; without it (or where `ip netns add` fails) it says why and exits 0.

Options:
  --binary PATH  the halo-clip executable (default: build/halo-clip)
  --work DIR     folder for the generated data, the runs and the logs (default: a new temporary
                 folder, removed at the end unless --keep or a check failed)
  --keep         keep the work folder
  -h, --help     this text

Exit status: 0 when every check passed (or the check was skipped), 1 when one failed, 2 for a
bad argument.
EOF
}

root=$(cd "$(dirname "$0")/.." && pwd)
binary="$root/build/halo-clip"
work=""
keep=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --binary) [[ $# -ge 2 ]] || { echo "multinode_check: --binary needs a path" >&2; exit 2; }
              binary=$2; shift 2 ;;
    --work) [[ $# -ge 2 ]] || { echo "multinode_check: --work needs a folder" >&2; exit 2; }
            work=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "multinode_check: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
if [[ ! -x "$binary" ]]; then
  echo "multinode_check: --binary '$binary' is not an executable" >&2
  exit 2
fi
binary=$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")

say() { printf 'multinode_check: %s\n' "$*"; }
skip() { say "SKIP: $*"; exit 0; }

# ---- the two nodes ----------------------------------------------------------------------------
[[ $(id -u) -eq 0 ]] || skip "not root: network namespaces (ip netns) need root"
command -v ip >/dev/null || skip "no 'ip' command (iproute2; scripts/setup.sh installs it)"
ns=("halo-mn-a-$$" "halo-mn-b-$$")  # node 0, node 1
dev=("hmn$$a" "hmn$$b")              # their ends of the veth pair (at most 15 characters)
addr=(10.231.0.1 10.231.0.2)
made_ns=()
made_work=0
failed=0
start_s=$SECONDS
deadline_s=$((SECONDS + 540))  # every wait ends before this, well inside ctest's 600 s

cleanup() {
  local status=$1
  trap - EXIT INT TERM
  local n pid pids end
  for n in "${made_ns[@]}"; do  # every process in our namespaces is one this script started
    pids=$(ip netns pids "$n" 2>/dev/null || true)
    for pid in $pids; do kill -KILL "$pid" 2>/dev/null || true; done
  done
  end=$((SECONDS + 10))  # until they are gone (at most 10 s), then the namespaces
  for n in "${made_ns[@]}"; do
    while [[ -n $(ip netns pids "$n" 2>/dev/null || true) ]] && ((SECONDS < end)); do
      sleep 0.1
    done
    ip netns del "$n" 2>/dev/null || true
  done
  # A veth end still here (set-up stopped before moving it) goes too; in a namespace it went
  # with the namespace.
  ip link del "${dev[0]}" 2>/dev/null || true
  if [[ -n "$work" && $keep -eq 0 && $made_work -eq 1 && $failed -eq 0 && $status -eq 0 ]]; then
    rm -rf "$work"
  elif [[ -n "$work" && $status -ne 0 ]]; then
    say "logs and runs kept in $work"
  fi
  exit "$status"
}
trap 'cleanup $?' EXIT
trap 'cleanup 130' INT
trap 'cleanup 143' TERM

if ! err=$(ip netns add "${ns[0]}" 2>&1); then
  skip "cannot create a network namespace (ip netns add: ${err//$'\n'/ })"
fi
made_ns+=("${ns[0]}" "${ns[1]}")
if ! err=$(ip netns add "${ns[1]}" 2>&1 &&
           ip link add "${dev[0]}" type veth peer name "${dev[1]}" 2>&1); then
  skip "cannot create a second namespace or a veth pair (${err//$'\n'/ })"
fi
for i in 0 1; do
  ip link set "${dev[i]}" netns "${ns[i]}"
  ip -n "${ns[i]}" addr add "${addr[i]}/24" dev "${dev[i]}"
  ip -n "${ns[i]}" link set "${dev[i]}" up
  ip -n "${ns[i]}" link set lo up
done
if ! err=$(ip netns exec "${ns[1]}" true 2>&1); then
  skip "cannot run a program in a network namespace (ip netns exec: ${err//$'\n'/ })"
fi
say "nodes: ${ns[0]} (${addr[0]} on ${dev[0]}, node 0, rendezvous)" \
    "and ${ns[1]} (${addr[1]} on ${dev[1]}, node 1)"

if [[ -z "$work" ]]; then
  work=$(mktemp -d "${TMPDIR:-/tmp}/multinode_check.XXXXXX")
  made_work=1
fi
mkdir -p "$work"
work=$(cd "$work" && pwd)
say "work folder: $work"

fail() {
  failed=1
  say "FAIL: $*"
  exit 1
}

# Seconds left to a wait of at most $1 seconds, within the overall deadline.
bounded() {
  local left=$((deadline_s - SECONDS))
  ((left < $1)) && echo "$((left > 1 ? left : 1))" || echo "$1"
}

# True while process $1 runs (a zombie, ended but not yet reaped, counts as ended).
running() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

# wait_exit PID SECONDS: waits at most SECONDS for our child PID; sets `status` to its exit
# status, or to 124 after the time (the process is then killed).
wait_exit() {
  local pid=$1 end=$((SECONDS + $(bounded "$2")))
  while running "$pid" && ((SECONDS < end)); do sleep 0.1; done
  if running "$pid"; then
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    status=124
    return
  fi
  status=0
  wait "$pid" 2>/dev/null || status=$?
}

# wait_for_text FILE TEXT SECONDS: true once FILE contains TEXT, false after SECONDS.
wait_for_text() {
  local end=$((SECONDS + $(bounded "$3")))
  until grep -qF -- "$2" "$1" 2>/dev/null; do
    ((SECONDS < end)) || return 1
    sleep 0.1
  done
}

# Kills our launcher $1 with SIGKILL, as a node that vanishes (its workers die with it), and waits
# up to 10 s for it to go. Disowned first, so that bash does not announce the kill.
kill_launcher() {
  disown "$1" 2>/dev/null || true
  kill -KILL "$1"
  local end=$((SECONDS + 10))
  while running "$1" && ((SECONDS < end)); do sleep 0.1; done
  ! running "$1" || fail "launcher $1 still runs 10 s after SIGKILL"
}

# The last lines of a log, indented, for a failure report.
tail_of() { tail -n "${2:-15}" "$1" 2>/dev/null | sed 's/^/    /'; }

# ---- data, configuration ----------------------------------------------------------------------
# 64 generated 32 x 32 images (random colour noise, binary PPM) with a caption each.
mkdir -p "$work/data/img"
words=(red green blue yellow round square tall small striped dotted)
{
  printf 'image_path\tcaption\n'
  for ((i = 0; i < 64; i++)); do
    { printf 'P6\n32 32\n255\n'; head -c $((32 * 32 * 3)) /dev/urandom; } >"$work/data/img/$i.ppm"
    printf 'img/%d.ppm\ta %s %s thing number %d\n' \
      "$i" "${words[i % 10]}" "${words[(i / 10) % 10]}" "$i"
  done
} >"$work/data/manifest.tsv"

# The tiny preset (centring on, as shipped: with several processes it subtracts the global
# batch's mean), shrunk to a few steps of a global batch of 16 (4 pairs per process on 4).
steps=40
settings=(--set "data.train_manifest=$work/data/manifest.tsv" --set data.workers=1
          --set tokenizer.vocab_size=40
          --set train.batch_size=16 --set "train.max_steps=$steps" --set train.log_every=1
          --set train.checkpoint_every=100000 --set optim.warmup_steps=2 --set train.device=cpu
          --set dist.backend=gloo --set dist.rendezvous_timeout_s=60
          --set dist.collective_timeout_s=60)
config="$root/configs/tiny.yaml"
port=29511

# run_node NODE OUT [LAUNCH FLAGS...] -- TRAIN ARGS...: starts node NODE's launcher in its
# namespace, output into OUT; sets `pid`. Gloo uses the node's veth address (GLOO_SOCKET_IFNAME).
run_node() {
  local node=$1 out=$2
  shift 2
  ip netns exec "${ns[node]}" env GLOO_SOCKET_IFNAME="${dev[node]}" "$binary" launch \
    --nproc-per-node 2 --nnodes 2 --node-rank "$node" --master-addr "${addr[0]}" \
    --master-port "$port" "$@" >"$out" 2>&1 &
  pid=$!
}

# The metric KEY of every step of RUN's metrics.jsonl, one "STEP VALUE" a line.
metric() {
  sed -n "s/.*\"step\": \([0-9]*\),.*\"$2\": \([^,}]*\).*/\1 \2/p" "$1/metrics.jsonl"
}

# The loss of RUN's last step.
final_loss() { metric "$1" loss | tail -n 1 | cut -d' ' -f2; }

# compare RUN REFERENCE KEY: every step's KEY within 1e-5 + 2e-5 |reference| (1e-5 as
# tests/test_dist_train.cpp, plus 2e-5 relative for float32 sums taken in another order).
# Prints the largest difference; false when a step differs or is missing.
compare() {
  awk -v key="$3" 'NR == FNR { ref[$1] = $2; next }
    { got[$1] = $2 }
    END {
      n = 0; worst = 0; bad = 0
      for (s in ref) {
        n++
        if (!(s in got)) { printf "step %s missing; ", s; bad = 1; continue }
        d = got[s] - ref[s]; if (d < 0) d = -d
        a = ref[s] < 0 ? -ref[s] : ref[s]
        if (d > worst) worst = d
        if (d > 1e-5 + 2e-5 * a) { printf "step %s: %s against %s; ", s, got[s], ref[s]; bad = 1 }
      }
      printf "%s: %d steps, largest difference %.2g\n", key, n, worst
      exit bad || n == 0
    }' <(metric "$2" "$3") <(metric "$1" "$3")
}

# ---- 1. two nodes x two processes against one process -------------------------------------------
say "1. one process, global batch 16, $steps steps"
t=$SECONDS
timeout "$(bounded 180)" "$binary" train --config "$config" "${settings[@]}" \
  --set "train.run_dir=$work/single" >"$work/single.out" 2>&1 ||
  { tail_of "$work/single.out"; fail "the one-process run failed"; }
say "   done in $((SECONDS - t)) s: final loss $(final_loss "$work/single")"
settings+=(--set "tokenizer.model=$work/single/tokenizer.model")  # the same tokenizer everywhere

say "1. two nodes x two processes (world size 4), the same global batches"
t=$SECONDS
run_node 0 "$work/two_nodes_0.out" --run-id "mn-$$-1" -- train --config "$config" "${settings[@]}" \
  --set "train.run_dir=$work/two_nodes"
node0=$pid
run_node 1 "$work/two_nodes_1.out" --run-id "mn-$$-1" -- train --config "$config" "${settings[@]}" \
  --set "train.run_dir=$work/two_nodes"
node1=$pid
wait_exit "$node0" 180
status0=$status
wait_exit "$node1" 30
status1=$status
if [[ $status0 -ne 0 || $status1 -ne 0 ]]; then
  say "   node 0:"; tail_of "$work/two_nodes_0.out"
  say "   node 1:"; tail_of "$work/two_nodes_1.out"
  fail "the two-node job ended with status $status0 (node 0) and $status1 (node 1)"
fi
grep -m1 -F "[launch] node 0 of 2" "$work/two_nodes_0.out" | sed 's/^/   /'
grep -m1 -F "[launch] node 1 of 2" "$work/two_nodes_1.out" | sed 's/^/   /'
say "   done in $((SECONDS - t)) s: final loss $(final_loss "$work/two_nodes")"
for key in loss grad_norm; do
  result=$(compare "$work/two_nodes" "$work/single" "$key") ||
    fail "two nodes differ from one process: $result"
  say "   $result (tolerance 1e-5 + 2e-5 |value|)"
done
say "1. PASS: the 2 x 2 job matches one process"

# ---- 2. a killed node stops the other ----------------------------------------------------------
port=29512
say "2. two nodes, then SIGKILL to node 1's launcher mid-training"
long=(--set train.max_steps=100000)
run_node 0 "$work/kill_0.out" --run-id "mn-$$-2" -- train --config "$config" "${settings[@]}" \
  "${long[@]}" --set "train.run_dir=$work/kill"
node0=$pid
run_node 1 "$work/kill_1.out" --run-id "mn-$$-2" -- train --config "$config" "${settings[@]}" \
  "${long[@]}" --set "train.run_dir=$work/kill"
node1=$pid
wait_for_text "$work/kill_0.out" "[rank 0] step 5/" 120 ||
  { tail_of "$work/kill_0.out"; fail "the job did not reach step 5"; }
killed_at=$EPOCHREALTIME
kill_launcher "$node1"
wait_exit "$node0" 30
stopped_s=$(awk -v a="$killed_at" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
if [[ $status -eq 124 ]]; then
  tail_of "$work/kill_0.out"
  fail "node 0's launcher still ran 30 s after the kill"
fi
grep -F "[launch]" "$work/kill_0.out" | tail -n 2 | sed 's/^/   /'
[[ $status -ne 0 ]] || fail "node 0's launcher ended with status 0 after losing node 1"
awk -v s="$stopped_s" 'BEGIN { exit !(s <= 10) }' ||
  fail "node 0's launcher took $stopped_s s (more than 10 s) to stop"
grep -F "[launch] the job failed" "$work/kill_0.out" | grep -qF "node 1" ||
  fail "node 0's launcher does not name node 1 when it stops"
for i in 0 1; do
  end=$((SECONDS + 10))
  while [[ -n $(ip netns pids "${ns[i]}") ]] && ((SECONDS < end)); do sleep 0.1; done
  [[ -z $(ip netns pids "${ns[i]}") ]] || fail "processes of the job are still running on node $i"
done
say "2. PASS: node 0's launcher stopped $stopped_s s after the kill (status $status)," \
    "naming node 1; no process left"

# ---- 3. --max-restarts recovers when the node comes back -----------------------------------------
port=29513
say "3. two nodes with --max-restarts 1, checkpoints every 4 steps; SIGKILL to node 1's" \
    "launcher, then start it again"
restart=(train --config "$config" "${settings[@]}" --set train.checkpoint_every=4
         --set "train.run_dir=$work/restart" --resume auto)
t=$SECONDS
run_node 0 "$work/restart_0.out" --run-id "mn-$$-3" --max-restarts 1 -- "${restart[@]}"
node0=$pid
run_node 1 "$work/restart_1.out" --run-id "mn-$$-3" --max-restarts 1 -- "${restart[@]}"
node1=$pid
wait_for_text "$work/restart_0.out" "[rank 0] step 10/" 120 ||
  { tail_of "$work/restart_0.out"; fail "the job did not reach step 10"; }
kill_launcher "$node1"
wait_for_text "$work/restart_0.out" "restarting the workers (1 of 1 restarts)" 30 ||
  { tail_of "$work/restart_0.out"; fail "node 0's launcher did not restart its workers"; }
grep -F "restarting the workers" "$work/restart_0.out" | sed 's/^/   /'
run_node 1 "$work/restart_1_again.out" --run-id "mn-$$-3" --max-restarts 1 -- "${restart[@]}"
node1=$pid
wait_exit "$node0" 180
status0=$status
wait_exit "$node1" 30
status1=$status
if [[ $status0 -ne 0 || $status1 -ne 0 ]]; then
  say "   node 0:"; tail_of "$work/restart_0.out" 25
  say "   node 1 (started again):"; tail_of "$work/restart_1_again.out"
  fail "the restarted job ended with status $status0 (node 0) and $status1 (node 1)"
fi
grep -m1 -E "\[rank 0\] .*resumed from" "$work/restart_0.out" | sed 's/^/   /' ||
  fail "node 0's workers did not resume from a checkpoint"
grep -m1 -F "[launch] node 1 of 2" "$work/restart_1_again.out" | sed 's/^/   /'
wait_for_text "$work/restart_0.out" "finished $steps steps" 1 ||
  fail "rank 0 did not report $steps steps"
say "   done in $((SECONDS - t)) s: final loss $(final_loss "$work/restart")"
result=$(compare "$work/restart" "$work/single" loss) ||
  fail "the restarted job's losses differ from one process's: $result"
say "   $result against one process (tolerance 1e-5 + 2e-5 |value|)"
say "3. PASS: node 0 restarted, node 1 rejoined, the job finished $steps steps with one" \
    "process's losses"

say "PASS: all 3 checks in $((SECONDS - start_s)) s"
