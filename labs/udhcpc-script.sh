#!/bin/sh
# busybox udhcpc hook for lab hosts: applies a lease to the interface only (never
# touches /etc/resolv.conf: Mininet hosts share the machine's filesystem).
case "$1" in
deconfig)
    ip -4 addr flush dev "$interface"
    ;;
bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    if [ -n "$staticroutes" ]; then
        set -- $staticroutes
        while [ $# -ge 2 ]; do
            if [ "$1" = "0.0.0.0/0" ]; then
                ip route replace default via "$2" dev "$interface"
            else
                ip route replace "$1" via "$2" dev "$interface"
            fi
            shift 2
        done
    elif [ -n "$router" ]; then
        for r in $router; do
            ip route replace default via "$r" dev "$interface"
            break
        done
    fi
    echo "lease $ip/${mask:-24} router ${router:-none} dns ${dns:-none}"
    ;;
esac
exit 0
