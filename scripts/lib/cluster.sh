# shellcheck shell=bash
# shellcheck disable=SC2034 # the constants are for the scripts that source this
# Every local cluster's constants, in one place, and the node arithmetic on them. Sourced after
# common.sh (it needs ROOT):
#
#   source "$(dirname "$0")/lib/common.sh"
#   source "$(dirname "$0")/lib/cluster.sh"
#
# Three clusters can run side by side on one machine, each with its own folders and ports:
# the default one (the Swift integration tests, the demo, most benchmarks), the chaos campaign's
# (scripts/chaos) and the replace benchmark's (scripts/bench-replace). The Swift tests repeat the
# default cluster's values (Tests/*/LocalCluster.swift): change them together.

[[ -n ${BERTH_CLUSTER_SH:-} ]] && return 0
BERTH_CLUSTER_SH=1

# The docker CLI the scripts drive the engines with.
DOCKER=/usr/bin/docker
# Replica host ports per node: node-N gets PORT_BASE + NODE_PORTS·(N−1) … +NODE_PORTS−1.
NODE_PORTS=100

# ---- The default cluster (scripts/local-cluster with no settings).
LOCAL_RUN=/run/berth-local                            # engines' sockets, pids, logs, exec roots; the PKI; the registry's config
LOCAL_DATA=/var/lib/berth-local                       # engines' data roots, the registry's storage, the stand-in image build
LOCAL_REGISTRY_PORT=5000                              # the registry, on 127.0.0.1
LOCAL_MANIFEST=$ROOT/state/local-cluster/nodes.yaml   # the nodes manifest `up` writes
LOCAL_PORT_BASE=21000                                 # node-1's first replica port (node-N: + 100·(N−1))
LOCAL_TLS_PORT_BASE=23750                             # node-N's engine listens for TLS on base + N

# ---- The chaos campaign's cluster (scripts/chaos). Fixed: never the environment's, so a campaign
# started where BERTH_CLUSTER_* point at the tests' cluster cannot take that one down.
CHAOS_RUN=/run/berth-chaos                            # as LOCAL_RUN
CHAOS_DATA=/var/lib/berth-chaos                       # as LOCAL_DATA
CHAOS_REGISTRY_PORT=5100                              # the campaign's registry
CHAOS_PORT_BASE=25000                                 # replica ports 25000+
CHAOS_TLS_PORT_BASE=24750                             # engine TLS ports 24751+
CHAOS_GATEWAY_PORT=18480                              # the campaign fleet's gateway (nginx)
CHAOS_API_PORT_A=17581                                # controller A's API (--listen)
CHAOS_API_PORT_B=17582                                # controller B's API (--listen)

# ---- The replace benchmark's cluster (scripts/bench-replace). Fixed, as the chaos one.
BENCH_RUN=/run/berth-bench                            # as LOCAL_RUN
BENCH_DATA=/var/lib/berth-bench                       # as LOCAL_DATA
BENCH_REGISTRY_PORT=5003                              # the benchmark's registry
BENCH_PORT_BASE=26000                                 # replica ports 26000+
BENCH_TLS_PORT_BASE=26750                             # engine TLS ports 26751+

# ---- Other ports the scripts use or name.
CONTROLLER_API_PORT=7480                              # `berth controller`'s default --listen (scripts/demo)
DEMO_GATEWAY_PORT=8080                                # the gateway of examples/local/fleet.yaml (scripts/demo)
BENCH_GATEWAY_PORT=18090                              # scripts/bench-gateway's Berth-rendered gateway
BENCH_STATIC_PORT=18091                               # scripts/bench-gateway's hand-written nginx

# ---- The cluster in effect: the default one, each value overridable through the environment
# (BERTH_CLUSTER_RUN, BERTH_CLUSTER_DATA, BERTH_REGISTRY_PORT, BERTH_CLUSTER_MANIFEST,
# BERTH_CLUSTER_PORT_BASE, BERTH_CLUSTER_TLS_PORT_BASE), or another one after `use_cluster`.
CLUSTER_RUN=${BERTH_CLUSTER_RUN:-$LOCAL_RUN}
CLUSTER_DATA=${BERTH_CLUSTER_DATA:-$LOCAL_DATA}
REGISTRY_PORT=${BERTH_REGISTRY_PORT:-$LOCAL_REGISTRY_PORT}
CLUSTER_MANIFEST=${BERTH_CLUSTER_MANIFEST:-$LOCAL_MANIFEST}
PORT_BASE=${BERTH_CLUSTER_PORT_BASE:-$LOCAL_PORT_BASE}
TLS_PORT_BASE=${BERTH_CLUSTER_TLS_PORT_BASE:-$LOCAL_TLS_PORT_BASE}
REGISTRY=127.0.0.1:$REGISTRY_PORT

# use_cluster chaos|bench: makes that cluster the one in effect, here and (exported as the
# BERTH_CLUSTER_* settings) for scripts/local-cluster. The manifest's place stays the caller's
# to export (BERTH_CLUSTER_MANIFEST).
use_cluster() {
    local p
    case $1 in
        chaos) p=CHAOS ;;
        bench) p=BENCH ;;
        *) die "use_cluster: no cluster \"$1\"" ;;
    esac
    local run=${p}_RUN data=${p}_DATA reg=${p}_REGISTRY_PORT base=${p}_PORT_BASE tls=${p}_TLS_PORT_BASE
    export BERTH_CLUSTER_RUN=${!run}
    export BERTH_CLUSTER_DATA=${!data}
    export BERTH_REGISTRY_PORT=${!reg}
    export BERTH_CLUSTER_PORT_BASE=${!base}
    export BERTH_CLUSTER_TLS_PORT_BASE=${!tls}
    CLUSTER_RUN=$BERTH_CLUSTER_RUN CLUSTER_DATA=$BERTH_CLUSTER_DATA REGISTRY_PORT=$BERTH_REGISTRY_PORT
    PORT_BASE=$BERTH_CLUSTER_PORT_BASE TLS_PORT_BASE=$BERTH_CLUSTER_TLS_PORT_BASE
    REGISTRY=127.0.0.1:$REGISTRY_PORT
}

# ---- Nodes of the cluster in effect (names node-1, node-2, …).

node_index() { [[ "$1" =~ ^node-([0-9]+)$ ]] || die "no such node \"$1\" (nodes are node-1, node-2, …)"; echo "${BASH_REMATCH[1]}"; }
# The node's engine socket, and the same as a DOCKER_HOST.
node_socket() { echo "$CLUSTER_RUN/$1/docker.sock"; }
node_host() { echo "unix://$CLUSTER_RUN/$1/docker.sock"; }
node_tls_port() { echo $((TLS_PORT_BASE + $(node_index "$1"))); }
# The node's replica port range: first and last.
node_port_from() { echo $((PORT_BASE + ($(node_index "$1") - 1) * NODE_PORTS)); }
node_port_to() { echo $(( $(node_port_from "$1") + NODE_PORTS - 1 )); }
engine_pid() { cat "$CLUSTER_RUN/$1/docker.pid" 2>/dev/null || true; }

# dk NODE ARGS…: the docker CLI on the node's engine; DK_TIMEOUT (seconds) bounds each call.
dk() {
    local n=$1
    shift
    if [[ -n ${DK_TIMEOUT:-} ]]; then timeout "$DK_TIMEOUT" "$DOCKER" -H "$(node_host "$n")" "$@"
    else "$DOCKER" -H "$(node_host "$n")" "$@"; fi
}

# rm_berth_containers [--filter LABEL=VALUE] NODE…: removes the node's containers with that label
# (default: every Berth container: io.berth.managed-by=berth). A node whose engine does not
# answer is passed over; fails when a removal failed.
rm_berth_containers() {
    local filter=io.berth.managed-by=berth n ids rc=0
    if [[ ${1:-} == --filter ]]; then filter=$2; shift 2; fi
    for n in "$@"; do
        ids=$(dk "$n" ps -aq --filter "label=$filter" 2>/dev/null || true)
        # shellcheck disable=SC2086 # one argument per container id
        if [[ -n $ids ]]; then dk "$n" rm -f $ids >/dev/null || rc=1; fi
    done
    return "$rc"
}
