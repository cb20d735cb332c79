# shellcheck shell=bash
# What the scripts share: messages, the repository root, root checks, the berth binary, waits,
# and a registry of things to undo on exit. Sourced, never run:
#
#   set -euo pipefail
#   source "$(dirname "$0")/lib/common.sh"
#
# Sourcing it moves to the repository root and sets ROOT to it, as every script did itself.
# It defines functions and a few variables only; it starts nothing.

[[ -n ${BERTH_COMMON_SH:-} ]] && return 0
BERTH_COMMON_SH=1

# The script's name, the prefix of its messages (local-cluster, chaos, bench-replace, …).
SCRIPT=${0##*/}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 1

# Prints "SCRIPT: error: MESSAGE" on stderr and exits 1.
die() { printf '%s: error: %s\n' "$SCRIPT" "$*" >&2; exit 1; }
# Prints "SCRIPT: MESSAGE" on stderr (progress, for a human).
say() { printf '%s: %s\n' "$SCRIPT" "$*" >&2; }
# Prints the script's header comment (line 2 up to the `set -euo` line): its --help.
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

is_root() { [[ $(id -u) -eq 0 ]]; }
# require_root WHY: dies with "WHY: run it as root" unless root.
require_root() { is_root || die "$1: run it as root"; }

# Seconds since the epoch, with microseconds, without a fork.
now() { echo "${EPOCHREALTIME}"; }
# elapsed T0 [DECIMALS]: seconds since T0 (a `now`), with DECIMALS decimals (default 3).
elapsed() { awk -v a="$(now)" -v b="$1" -v d="${2:-3}" 'BEGIN { printf "%." d "f", a - b }'; }
# median X…: the median of the numbers.
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# ---------------------------------------------------------------------------------------------
# Things to undo on exit.

_ON_EXIT=()
# on_exit COMMAND: COMMAND (a string, evaluated then, so it sees variables as they are at exit)
# runs when the script exits, for whatever reason; the last registered runs first. A failing
# command does not stop the others, and the script's exit status is kept. The first call also
# traps INT and TERM as `exit 130`, so an interrupted script cleans up too, unless the caller
# passes --no-signals to the first call (then only the EXIT trap is set, as the benchmarks had).
on_exit() {
    if [[ $1 == --no-signals ]]; then
        shift
        ((${#_ON_EXIT[@]})) || _ON_EXIT_SIGNALS=0
    fi
    if ! ((${#_ON_EXIT[@]})); then
        trap _run_on_exit EXIT
        ((${_ON_EXIT_SIGNALS:-1})) && trap 'exit 130' INT TERM
    fi
    _ON_EXIT+=("$1")
}
_run_on_exit() {
    local rc=$? i
    trap - EXIT INT TERM
    for ((i = ${#_ON_EXIT[@]} - 1; i >= 0; i--)); do eval "${_ON_EXIT[i]}" || true; done
    exit "$rc"
}

# terminate PID [TENTHS]: SIGTERM, up to TENTHS tenths of a second (default 50) for it to go,
# then SIGKILL; reaps it when it is a child. Nothing when PID is empty or gone.
terminate() {
    local p=$1 tenths=${2:-50}
    [[ -n $p ]] || return 0
    kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 1 "$tenths"); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
}

# ---------------------------------------------------------------------------------------------
# The berth binary.

# release_berth: BERTH is $BERTH or .build/release/berth, which must exist (the benchmarks).
release_berth() {
    BERTH=${BERTH:-.build/release/berth}
    [[ -x $BERTH ]] || { echo "no $BERTH; build it with: swift build -c release --product berth" >&2; exit 1; }
}

# copy_berth_aside SOURCE: BERTH becomes a copy of SOURCE at /tmp/berth-SCRIPT.PID, removed on
# exit, so that a relink of SOURCE during a long run does not bite.
copy_berth_aside() {
    BERTH=/tmp/berth-$SCRIPT.$$
    # shellcheck disable=SC2016 # expanded at exit
    on_exit '[[ -n ${BERTH:-} && $BERTH == /tmp/berth-$SCRIPT.* ]] && rm -f "$BERTH"'
    cp "$1" "$BERTH"
}

# ---------------------------------------------------------------------------------------------
# Waiting.

# wait_for TRIES INTERVAL COMMAND…: runs COMMAND until it succeeds, at most TRIES times,
# INTERVAL seconds apart; fails when it never did.
wait_for() {
    local tries=$1 interval=$2
    shift 2
    for _ in $(seq 1 "$tries"); do
        "$@" && return 0
        sleep "$interval"
    done
    return 1
}

# http_ok URL: the URL answers 2xx within 2 s.
http_ok() { curl -sf -m 2 "$1" >/dev/null 2>&1; }

# all_ready [--version V] PORT…: waits until every 127.0.0.1:PORT answers 200 on
# /v2/health/ready (with --version: answers an inference naming version V), polling every 50 ms.
# No timeout of its own: run it under `timeout N bash -c "$(declare -f all_ready); all_ready …"`
# for one.
all_ready() {
    local want='' p
    if [[ ${1:-} == --version ]]; then want=$2; shift 2; fi
    local pending=("$@")
    while ((${#pending[@]})); do
        local next=()
        for p in "${pending[@]}"; do
            if [[ -n $want ]]; then
                curl -s -m 1 -X POST -d '{}' "http://127.0.0.1:$p/v2/models/standin/infer" 2>/dev/null | grep -q "@$want" || next+=("$p")
            else
                [[ $(curl -s -m 1 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$p/v2/health/ready" 2>/dev/null) == 200 ]] || next+=("$p")
            fi
        done
        pending=("${next[@]+"${next[@]}"}")
        if ((${#pending[@]})); then sleep 0.05; fi
    done
    return 0
}

# require_free_port PORT: dies, naming who listens, when something listens on TCP PORT.
require_free_port() {
    if ss -ltnH "sport = :$1" | grep -q .; then die "port $1 is in use: $(ss -ltnpH "sport = :$1" | head -1)"; fi
}
