#!/bin/sh
# Records the runs the built-in checks' examples replay (checks/examples/*.json): each a real
# failure made in network namespaces, as the scenario tests make them (Tests/TCPCheckCoreTests/
# Support/Scenario.swift): a client 198.18.0.1 and a server 198.18.0.2 on a veth pair, addresses
# from 198.18.0.0/15 only, each namespace with its own resolv.conf and hosts file. Recorded with
# --redact. Run it again, as root, when a check's calls change and its example says "not in the
# recording". Needs iproute2, iptables and python3.
#   checks/examples/record.sh [TCPCHECK]      (default: .build/debug/tcpcheck)
set -eu
cd "$(dirname "$0")"
TCPCHECK=$(realpath "${1:-../../.build/debug/tcpcheck}")
CHECKS="client_config port_open listening firewall resources"   # not logs: this host's own logs stay out
C=tcexc$$ S=tcexs$$ B=tcexb$$

cleanup() {
    for ns in $C $S $B; do
        for pid in $(ip netns pids $ns 2>/dev/null); do kill -9 $pid 2>/dev/null || true; done
        ip netns del $ns 2>/dev/null || true
        rm -rf /etc/netns/$ns
    done
}
trap cleanup EXIT

# A client and a server joined by a veth pair (and a backend behind the server, for DNAT).
setup() {
    cleanup
    for ns in $C $S $B; do
        mkdir -p /etc/netns/$ns
        printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' > /etc/netns/$ns/resolv.conf
        printf '127.0.0.1 localhost\n::1 localhost\n' > /etc/netns/$ns/hosts
        ip netns add $ns
        ip -n $ns link set lo up
    done
    link $C 198.18.0.1 $S 198.18.0.2 0
    link $S 198.18.5.1 $B 198.18.5.2 5
    ip -n $B route add default via 198.18.5.1
    ip netns exec $S sysctl -qw net.ipv4.ip_forward=1
}

link() {
    ip link add va$5$$ netns $1 type veth peer name vb$5$$ netns $3
    ip -n $1 addr add $2/24 dev va$5$$ && ip -n $1 link set va$5$$ up
    ip -n $3 addr add $4/24 dev vb$5$$ && ip -n $3 link set vb$5$$ up
}

# python3 -c "$LISTENER" MODE PORT: hold (accept, keep), backlog1 (listen(1), never accept),
# reset (accept and reset at once). It ends by itself after two minutes.
LISTENER='
import socket, struct, sys, time
mode, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if mode == "reset": s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.bind(("0.0.0.0", port)); s.listen(1 if mode == "backlog1" else 64); s.settimeout(0.5)
held, end = [], time.time() + 120
while time.time() < end:
    if mode == "backlog1": time.sleep(0.2); continue
    try: c, _ = s.accept()
    except socket.timeout: continue
    c.close() if mode == "reset" else held.append(c)
'
listen() {   # NS MODE PORT
    ip netns exec $1 python3 -c "$LISTENER" $2 $3 >/dev/null 2>&1 &
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        [ -n "$(ip netns exec $1 ss -Htln "sport = :$3")" ] && return
        sleep 0.2
    done
    echo "the listener on port $3 did not start" >&2; exit 1
}

record() {   # NAME NS TARGET
    ip netns exec $2 "$TCPCHECK" run $CHECKS --target $3 --timeout 1 --record "$1.json" --redact --no-color > "$1.txt" || true
    echo "$1.json: $(grep '^Verdict' "$1.txt")"
    rm "$1.txt"
}

# Nothing listens on the port, diagnosed on the server.
setup
record not_listening $S 198.18.0.2:8080

# An iptables DROP rule for the port on the server, a listener behind it.
setup
listen $S hold 8081
ip netns exec $S iptables -A INPUT -p tcp --dport 8081 -j DROP
record firewall_drop $S 198.18.0.2:8081

# The server accepts and resets every connection at once, seen from the client.
setup
listen $S reset 8082
record app_closed $C 198.18.0.2:8082

# A backlog-1 listener that never accepts, its accept queue filled from the client.
setup
listen $S backlog1 8083
ip netns exec $C python3 -c '
import socket, time
held = []
for _ in range(3):
    s = socket.socket(); s.setblocking(False)
    try: s.connect(("198.18.0.2", 8083))
    except BlockingIOError: pass
    held.append(s)
time.sleep(120)' >/dev/null 2>&1 &
sleep 1
record backlog_overflow $S 198.18.0.2:8083

# The server DNATs the port to a backend address nobody has.
setup
ip netns exec $S iptables -t nat -A PREROUTING -p tcp --dport 8084 -j DNAT --to-destination 198.18.5.9:80
record dnat_backend_down $S 198.18.0.2:8084
