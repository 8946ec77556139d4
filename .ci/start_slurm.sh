#!/usr/bin/env bash
# Start a one-node SLURM cluster on this machine (Debian, run as root), for
# tests/test_slurm.py. Idempotent: installs what is missing, (re)writes the
# configuration, starts munged, slurmctld and slurmd unless they already run, and
# waits until `sinfo` shows the node idle. No accounting database (sacct is off), no
# cgroups (proctrack/linuxproc, task/none), no GPUs (no GRES).
#
#   bash .ci/start_slurm.sh          # then: sinfo; pytest -m slurm
#
# Logs: /var/log/slurm/slurmctld.log, /var/log/slurm/slurmd.log, /var/log/munge/munged.log
set -euo pipefail

[ "$(id -u)" -eq 0 ] || { echo "start_slurm.sh: must run as root" >&2; exit 1; }

# --- packages -----------------------------------------------------------------
need=()
for pair in munged:munge slurmctld:slurmctld slurmd:slurmd sinfo:slurm-client; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair%%:*}" ] || need+=("${pair##*:}")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "start_slurm.sh: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends munge slurmctld slurmd slurm-client >/dev/null
fi

# --- munge --------------------------------------------------------------------
install -d -o munge -g munge -m 0700 /etc/munge /var/log/munge
install -d -o munge -g munge -m 0711 /var/lib/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    if command -v mungekey >/dev/null 2>&1; then
        mungekey --create --keyfile=/etc/munge/munge.key
    else
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key

alive() { # alive PIDFILE NAME: the process PIDFILE names runs and is NAME (not a reused pid)
    local pid
    [ -s "$1" ] || return 1
    pid=$(cat "$1")
    [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$2" ]
}

if ! alive /run/munge/munged.pid munged || ! munge -n </dev/null | unmunge >/dev/null 2>&1; then
    rm -f /run/munge/munged.pid /run/munge/munge.socket.2*
    runuser -u munge -- /usr/sbin/munged --force
fi
for _ in $(seq 20); do munge -n </dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.5; done
munge -n </dev/null | unmunge >/dev/null || { echo "start_slurm.sh: munged is not answering" >&2; exit 1; }

# --- slurm.conf -----------------------------------------------------------------
node=$(hostname -s)
# slurmd -C prints this machine's hardware as slurm.conf wants it:
# NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105
hw=$(slurmd -C | head -n 1)
cpus=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$hw")
mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
cpus=${cpus:-$(nproc)}
mem=${mem:-1024}

install -d -m 0755 /etc/slurm /var/log/slurm /var/spool/slurmd /run/slurm
install -d -o slurm -g slurm -m 0755 /var/spool/slurmctld
chown slurm:slurm /var/log/slurm

conf=$(mktemp)
cat >"$conf" <<EOF
# Written by .ci/start_slurm.sh: a one-node test cluster on this machine.
ClusterName=unlearnbench
SlurmctldHost=${node}(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
# No cgroups in containers/sandboxes.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# No accounting database: sacct is unavailable, squeue reports job states.
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
# Finished jobs stay visible to squeue for 5 minutes (Snakemake polls with squeue).
MinJobAge=300
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
ReturnToService=2
SlurmctldTimeout=60
SlurmdTimeout=60
InactiveLimit=0
KillWait=10
Waittime=0
NodeName=${node} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem} State=UNKNOWN
PartitionName=debug Nodes=${node} Default=YES MaxTime=INFINITE State=UP
EOF
changed=0
if ! cmp -s "$conf" /etc/slurm/slurm.conf; then
    install -m 0644 "$conf" /etc/slurm/slurm.conf
    changed=1
fi
rm -f "$conf"

# --- daemons ----------------------------------------------------------------------
stop() { # stop PIDFILE NAME
    if alive "$1" "$2"; then
        kill "$(cat "$1")"
        for _ in $(seq 20); do alive "$1" "$2" || break; sleep 0.5; done
    fi
    rm -f "$1"
}
if [ "$changed" -eq 1 ]; then  # a new configuration: restart with it
    stop /run/slurm/slurmd.pid slurmd
    stop /run/slurm/slurmctld.pid slurmctld
fi
alive /run/slurm/slurmctld.pid slurmctld || /usr/sbin/slurmctld
for _ in $(seq 60); do scontrol ping >/dev/null 2>&1 && break; sleep 0.5; done
alive /run/slurm/slurmd.pid slurmd || /usr/sbin/slurmd

# --- wait for the node --------------------------------------------------------------
state=""
for i in $(seq 120); do
    state=$(sinfo -h -n "$node" -o '%T' 2>/dev/null | head -n 1 || true)
    case "$state" in
        idle|mixed|allocated) break ;;
        down*|drain*|fail*)
            [ $((i % 10)) -eq 0 ] && scontrol update NodeName="$node" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 1
done
case "$state" in
    idle|mixed|allocated) ;;
    *)
        echo "start_slurm.sh: node $node is '${state:-unknown}' after 120 s" >&2
        tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
        exit 1 ;;
esac
sinfo
