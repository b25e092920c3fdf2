#!/usr/bin/env bash
# A one-node SLURM cluster on this machine (slurmctld + slurmd on localhost, one partition `debug`
# with all the machine's CPUs and memory, requeue allowed, no accounting database), for the
# `slurm` tests and for trying hydra/launcher=slurm without a real cluster. Needs root (apt, daemons).
#
#   bash scripts/slurm_local.sh start    # install if missing, configure, start, wait for the node
#   bash scripts/slurm_local.sh status   # sinfo, or why not
#   bash scripts/slurm_local.sh stop     # stop slurmd, slurmctld, munged
#
# `start` is idempotent: with the daemons up and the node idle it only says so. Measured on the 2-core
# test machine: 35 s on a fresh one (apt-get update + install + start), 0.2-1.2 s once installed.
set -euo pipefail

CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
STATE=/var/spool/slurmctld
SPOOL=/var/spool/slurmd
LOGS=/var/log/slurm
RUN=/run/slurm
PARTITION=debug
WAIT_S=${SLURM_LOCAL_WAIT_S:-60}

die() { echo "slurm_local: $*" >&2; exit 1; }

install_packages() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
        && command -v sbatch >/dev/null; then
        return
    fi
    [ "$(id -u)" = 0 ] || die "installing slurm-wlm and munge needs root (apt-get)"
    echo "slurm_local: installing slurm-wlm and munge (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
}

write_config() {
    local host node_line
    host=$(hostname -s)
    # slurmd -C prints this machine's node line (CPUs, sockets, cores, RealMemory in MB) as SLURM sees it
    node_line=$(slurmd -C | head -n 1)
    [[ $node_line == NodeName=* ]] || die "slurmd -C did not describe this node: $node_line"
    mkdir -p "$CONF_DIR" "$STATE" "$SPOOL" "$LOGS" "$RUN"
    cat >"$CONF.new" <<EOF
# written by trainlab's scripts/slurm_local.sh: a one-node cluster on localhost
ClusterName=trainlab
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# a requeued job waits out the step credential's lifetime before it may start again (120 s by default)
AuthInfo=cred_expire=10
MpiDefault=none
# no cgroups inside containers: track processes by their parent, bind nothing
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
# look for startable jobs every second or two, not every minute: tests wait on the scheduler
SchedulerParameters=sched_interval=2,bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# preemption by partition priority ends in a requeue; jobs are requeueable (scontrol requeue)
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
JobRequeue=1
# no accounting storage: sacct has nothing to read, squeue/scontrol know a job until MinJobAge after it ends
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=300
KillWait=30
ReturnToService=2
StateSaveLocation=$STATE
SlurmdSpoolDir=$SPOOL
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
${node_line%% UpTime=*} NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
    if [ -f "$CONF" ] && cmp -s "$CONF" "$CONF.new"; then
        rm "$CONF.new"
        return 1  # unchanged
    fi
    mv "$CONF.new" "$CONF"
    return 0
}

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_munge() {
    local pidfile=/run/munge/munged.pid
    running "$pidfile" && return
    [ -s /etc/munge/munge.key ] || { dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; }
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge /var/log/munge /var/lib/munge && chown munge:munge /run/munge /var/log/munge /var/lib/munge
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do running "$pidfile" && return; sleep 0.1; done
    die "munged did not start (see /var/log/munge/munged.log)"
}

node_state() { sinfo -h -N -o %t 2>/dev/null | head -n 1; }

stop_daemons() {
    local name pidfile
    for name in slurmd slurmctld; do
        pidfile=$RUN/$name.pid
        if running "$pidfile"; then
            kill "$(cat "$pidfile")"
            for _ in $(seq 100); do running "$pidfile" || break; sleep 0.1; done
        fi
    done
}

start() {
    local t0 changed=0
    t0=$(date +%s%N)
    [ "$(id -u)" = 0 ] || die "start needs root (apt-get, /etc/slurm, the daemons): sudo bash $0 start"
    install_packages
    write_config && changed=1
    start_munge
    if [ $changed = 1 ]; then
        stop_daemons  # new configuration: the daemons read it when they start
    fi
    if ! running "$RUN/slurmctld.pid"; then
        # -c: a clean start (no jobs or node states kept from an earlier cluster)
        slurmctld -c || die "slurmctld did not start (see $LOGS/slurmctld.log)"
    fi
    running "$RUN/slurmd.pid" || slurmd || die "slurmd did not start (see $LOGS/slurmd.log)"
    local state=""
    for _ in $(seq $((WAIT_S * 5))); do
        state=$(node_state)
        case $state in
            idle|mix|alloc) break ;;
            down*|drain*) scontrol update nodename="$(hostname -s)" state=resume 2>/dev/null || true ;;
        esac
        sleep 0.2
    done
    case $state in
        idle|mix|alloc) ;;
        *) die "the node is not up after ${WAIT_S} s (sinfo says '${state:-nothing}'; see $LOGS/slurmctld.log and $LOGS/slurmd.log)" ;;
    esac
    local ms=$((($(date +%s%N) - t0) / 1000000))
    printf 'slurm_local: partition %s up on %s (%s) in %d.%01d s\n' "$PARTITION" "$(hostname -s)" "$state" \
        $((ms / 1000)) $((ms % 1000 / 100))
}

stop() {
    stop_daemons
    if running /run/munge/munged.pid; then
        kill "$(cat /run/munge/munged.pid)"
    fi
    echo "slurm_local: stopped"
}

status() {
    command -v sinfo >/dev/null || die "not installed (bash scripts/slurm_local.sh start)"
    sinfo -N -o "%N %P %t %c %m" 2>&1 || die "slurmctld does not answer (bash scripts/slurm_local.sh start)"
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
