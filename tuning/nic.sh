#!/usr/bin/env bash
# Keeps a NIC's interrupts off shardline's shard cores.
#
#   tuning/nic.sh [--dry-run] [--queues N] [--rx-usecs N] [--tx-usecs N] IFACE IRQ_CPUS SHARD_CPUS
#   e.g. tuning/nic.sh --dry-run eth0 0-1 2-15      (the 10gbe-16core profile)
#        tuning/nic.sh eth0 0-7 8-63                (the 25gbe-64core profile)
#
# Why: a shard runs one tick of every instance it owns each 33 ms; an
# interrupt or a softirq round on its core (tens of µs to ms at 100k+
# connections) delays that tick for every player on the shard. So the NIC's
# queues, their interrupts and the kernel's receive processing all go to a
# few dedicated IRQ cores, and shardline runs with `--cpus SHARD_CPUS`.
#
# What it does (root; with --dry-run it only prints the commands):
#   1. RSS: one combined queue per IRQ core (ethtool -L), so every IRQ core
#      gets a share of the flows and no queue is left without a core.
#   2. Interrupt coalescing (ethtool -C): wait up to --rx-usecs/--tx-usecs
#      (default 50 µs) before interrupting. 50 µs is invisible next to a
#      33 ms tick and caps each queue at ~20k interrupts/s.
#   3. IRQ affinity: every MSI interrupt of the device goes to an IRQ core,
#      round-robin (/proc/irq/N/smp_affinity_list).
#   4. RPS off (rps_cpus = 0): RSS already spreads the flows; RPS would hand
#      receive processing back to other cores, shard cores included.
# Settings last until reboot or driver reload: run it from a oneshot unit
# ordered before shardline.service (see tuning/README.md).
#
# irqbalance rewrites IRQ affinity every 10 s: stop it, or ban the shard cores
# (IRQBALANCE_BANNED_CPULIST=SHARD_CPUS in /etc/default/irqbalance).
set -euo pipefail

usage() {
    sed -n '4,6p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

dry_run=0
queues=""
rx_usecs=50
tx_usecs=50
while [[ $# -gt 0 && $1 == --* ]]; do
    case $1 in
    --dry-run) dry_run=1 ;;
    --queues) queues=${2:?--queues needs a number}; shift ;;
    --rx-usecs) rx_usecs=${2:?--rx-usecs needs a number}; shift ;;
    --tx-usecs) tx_usecs=${2:?--tx-usecs needs a number}; shift ;;
    --help) usage ;;
    *) echo "nic.sh: unknown option $1" >&2; usage ;;
    esac
    shift
done
[[ $# -eq 3 ]] || usage
iface=$1
irq_list=$2
shard_list=$3

# "0-2,5" → "0 1 2 5"
expand_cpus() {
    local part out=()
    IFS=, read -ra parts <<<"$1"
    for part in "${parts[@]}"; do
        if [[ $part =~ ^([0-9]+)-([0-9]+)$ ]]; then
            out+=($(seq "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"))
        elif [[ $part =~ ^[0-9]+$ ]]; then
            out+=("$part")
        else
            echo "nic.sh: $1 is not a core list like 0-1,4" >&2
            exit 2
        fi
    done
    echo "${out[@]}"
}

# Runs a command, or prints it with --dry-run.
run() {
    if ((dry_run)); then
        echo "$*"
    else
        "$@"
    fi
}

# Writes VALUE to FILE, or prints the write with --dry-run.
put() {
    if ((dry_run)); then
        echo "echo $1 > $2"
    else
        echo "$1" >"$2"
    fi
}

irq_cpus=($(expand_cpus "$irq_list"))
shard_cpus=($(expand_cpus "$shard_list"))
for c in "${irq_cpus[@]}"; do
    for s in "${shard_cpus[@]}"; do
        if [[ $c == "$s" ]]; then
            echo "nic.sh: core $c is in both IRQ_CPUS and SHARD_CPUS" >&2
            exit 2
        fi
    done
done
online=$(($(getconf _NPROCESSORS_ONLN)))
for c in "${irq_cpus[@]}" "${shard_cpus[@]}"; do
    if ((c >= online)); then
        echo "nic.sh: core $c does not exist here ($online cores online)" >&2
        exit 2
    fi
done
dev=/sys/class/net/$iface
if [[ ! -e $dev ]]; then
    echo "nic.sh: no interface $iface (see: ip -br link)" >&2
    exit 2
fi
if ((!dry_run)) && [[ $(id -u) != 0 ]]; then
    echo "nic.sh: needs root (or use --dry-run)" >&2
    exit 2
fi
if command -v systemctl >/dev/null && systemctl is-active --quiet irqbalance 2>/dev/null; then
    echo "nic.sh: WARNING: irqbalance is running and will move these IRQs back;" \
        "stop it or set IRQBALANCE_BANNED_CPULIST=$shard_list" >&2
fi
use_ethtool=1
if ! command -v ethtool >/dev/null; then
    echo "nic.sh: WARNING: ethtool not found (apt-get install ethtool)" >&2
    ((dry_run)) || use_ethtool=0
fi

# 1. RSS queues: one per IRQ core unless --queues says otherwise.
queues=${queues:-${#irq_cpus[@]}}
if ((use_ethtool)); then
    echo "# RSS: $queues combined queues"
    run ethtool -L "$iface" combined "$queues" ||
        echo "nic.sh: WARNING: $iface refused $queues combined queues (see: ethtool -l $iface)" >&2

    # 2. Interrupt coalescing. Drivers differ in what they accept: a refusal
    # is reported, not fatal.
    echo "# coalescing: rx ${rx_usecs} µs, tx ${tx_usecs} µs"
    run ethtool -C "$iface" adaptive-rx off adaptive-tx off rx-usecs "$rx_usecs" tx-usecs "$tx_usecs" ||
        echo "nic.sh: WARNING: $iface refused coalescing settings (see: ethtool -c $iface)" >&2
fi

# 3. IRQ affinity. A virtio NIC's MSI list lives on its PCI parent.
msi=$dev/device/msi_irqs
[[ -d $msi ]] || msi=$dev/device/../msi_irqs
if [[ -d $msi ]]; then
    irqs=($(ls "$msi" | sort -n))
else
    # No MSI directory: fall back to /proc/interrupts lines naming the interface.
    irqs=($(awk -v ifc="$iface" 'index($0, ifc) { sub(":", "", $1); print $1 }' /proc/interrupts))
fi
if ((${#irqs[@]} == 0)); then
    echo "nic.sh: WARNING: found no interrupts for $iface" >&2
fi
echo "# IRQ affinity: ${#irqs[@]} interrupts → cores $irq_list"
i=0
for irq in "${irqs[@]}"; do
    [[ -e /proc/irq/$irq ]] || continue
    put "${irq_cpus[i % ${#irq_cpus[@]}]}" "/proc/irq/$irq/smp_affinity_list"
    i=$((i + 1))
done

# 4. RPS off on every receive queue.
echo "# RPS off"
for q in "$dev"/queues/rx-*/rps_cpus; do
    [[ -e $q ]] || continue
    put 0 "$q"
done

echo "# now run shardline on the shard cores: shardline serve --cpus $shard_list" \
    "(or CPUAffinity=${shard_list//,/ } in tuning/shardline.service)"
