#!/bin/sh
# hosts.sh - a few "hosts" on this machine for the cluster tests: each is a
# network namespace with a veth pair to the root namespace, its own sshd and
# its own "local disk".
#
#   sh tests/cluster/hosts.sh up DIR [N]    start N hosts (default 3), state in DIR
#   sh tests/cluster/hosts.sh down DIR      stop them and remove what "up" made
#
# "up" exits 77 with a one-line reason on stderr when hosts cannot be made here
# (not root, no ip netns, no sshd): the caller skips.  Any other failure exits 1.
#
# What "up" leaves in DIR:
#   ssh_config     Host h1..hN (StrictHostKeyChecking no, UserKnownHostsFile
#                  /dev/null, BatchMode yes, the client key): `ssh -F DIR/ssh_config h1`
#   sshlogins      one line per host for GNU parallel's --sshloginfile ("1/h1": one job at a time)
#   node/          the same path on every host, a different folder on each:
#                  host i sees DIR/hosts/hi there (a bind mount inside its sshd's
#                  mount namespace); in the root namespace it stays empty.  The
#                  rest of the file system is shared, so this is the hosts' own disk.
#   state          what "down" removes (namespaces, veths)
#
# Addresses: 169.254.X.0/24 (IPv4 link-local, never routed), one /30 per host:
# 169.254.X.(4i-3) on the root side, 169.254.X.(4i-2) in host i.  X is one of
# 1..254 that no interface of the machine has an address in, and the names
# carry it: namespaces mlxt-X-hi, veths mtXri (root side) / mtXni (host side).
# Creating mlxt-X-h1 claims X, so concurrent runs never share an address or a
# name (one that finds the name taken tries the next X).
set -eu

cmd=${1:-}; D=${2:-}
[ -n "$cmd" ] && [ -n "$D" ] || { echo "usage: hosts.sh up|down DIR [N]" >&2; exit 2; }

down() {
  [ -f "$D/state" ] || return 0
  while read -r ns vr; do
    pids=$(ip netns pids "$ns" 2> /dev/null || true)
    [ -n "$pids" ] && kill $pids 2> /dev/null || true
    # give sshd and its sessions a moment, then make sure
    i=0
    while [ -n "$(ip netns pids "$ns" 2> /dev/null || true)" ] && [ $i -lt 20 ]; do
      sleep 0.1; i=$((i + 1))
    done
    pids=$(ip netns pids "$ns" 2> /dev/null || true)
    [ -n "$pids" ] && kill -9 $pids 2> /dev/null || true
    ip link del "$vr" 2> /dev/null || true
    ip netns del "$ns" 2> /dev/null || true
  done < "$D/state"
  rm -f "$D/state"
}

if [ "$cmd" = down ]; then
  down
  exit 0
fi
[ "$cmd" = up ] || { echo "hosts.sh: unknown command $cmd" >&2; exit 2; }
N=${3:-3}

# --- can hosts be made here?  (77 = skip)
unavailable() { echo "$*" >&2; exit 77; }
[ "$(id -u)" -eq 0 ] || unavailable "needs root: network namespaces (ip netns add) and an sshd per host"
command -v ip > /dev/null || unavailable "no ip command (iproute2)"
SSHD=${SSHD:-/usr/sbin/sshd}
[ -x "$SSHD" ] || unavailable "no sshd at $SSHD (openssh-server)"
for c in ssh ssh-keygen; do
  command -v $c > /dev/null || unavailable "no $c (openssh-client)"
done
probe=mlxt-probe-$$
ip netns add "$probe" 2> /dev/null || unavailable "ip netns add fails here (no network namespaces)"
ip netns del "$probe"

mkdir -p "$D/hosts" "$D/node" "$D/log"
: > "$D/state"
trap 'down' EXIT
trap 'exit 1' INT TERM HUP

# --- a /24 of 169.254 that nothing here uses, claimed by making host 1's
# namespace, mlxt-X-h1: a concurrent run that picked the same X fails there
# and tries the next one
X=$(( ($$ % 200) + 20 ))
tries=0
while ip -4 -o addr show | grep -q "inet 169\.254\.$X\." \
    || ! ip netns add "mlxt-$X-h1" 2> /dev/null; do
  X=$((X % 254 + 1)); tries=$((tries + 1))
  [ $tries -lt 254 ] || { echo "hosts.sh: no free 169.254.X.0/24" >&2; exit 1; }
done

i=1
while [ $i -le "$N" ]; do
  ns=mlxt-$X-h$i; vr=mt${X}r$i; vn=mt${X}n$i
  [ $i -eq 1 ] || ip netns add "$ns"
  echo "$ns $vr" >> "$D/state"
  ip link add "$vr" type veth peer name "$vn" netns "$ns"
  ip addr add "169.254.$X.$((4 * i - 3))/30" dev "$vr"
  ip link set "$vr" up
  ip -n "$ns" addr add "169.254.$X.$((4 * i - 2))/30" dev "$vn"
  ip -n "$ns" link set "$vn" up
  ip -n "$ns" link set lo up
  i=$((i + 1))
done

# --- keys and configs
rm -f "$D/host_key" "$D/host_key.pub" "$D/id" "$D/id.pub"
ssh-keygen -q -t ed25519 -N '' -f "$D/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$D/id"
cp "$D/id.pub" "$D/authorized_keys"
mkdir -p /run/sshd   # sshd's privilege-separation folder (the service makes it at boot)
: > "$D/ssh_config"; : > "$D/sshlogins"
i=1
while [ $i -le "$N" ]; do
  addr=169.254.$X.$((4 * i - 2))
  mkdir -p "$D/hosts/h$i"
  cat > "$D/sshd_config.h$i" <<EOF
ListenAddress $addr
Port 22
HostKey $D/host_key
PidFile $D/sshd.h$i.pid
AuthorizedKeysFile $D/authorized_keys
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
X11Forwarding no
PrintMotd no
MaxStartups 100
MaxSessions 100
SetEnv MLX_CLUSTER_HOST=h$i
EOF
  cat >> "$D/ssh_config" <<EOF
Host h$i
  HostName $addr
EOF
  echo "1/h$i" >> "$D/sshlogins"
  # sshd in host i's namespace, with DIR/node bound to the host's own folder
  # (ip netns exec runs it in a mount namespace of its own)
  ip netns exec "mlxt-$X-h$i" sh -c 'mount --bind "$1" "$2" && exec "$3" -f "$4" -E "$5"' \
    sh "$D/hosts/h$i" "$D/node" "$SSHD" "$D/sshd_config.h$i" "$D/log/sshd.h$i.log"
  i=$((i + 1))
done
cat >> "$D/ssh_config" <<EOF
Host *
  User root
  IdentityFile $D/id
  IdentitiesOnly yes
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  BatchMode yes
  LogLevel ERROR
  ConnectTimeout 5
EOF

# --- every host answers over ssh (sshd forks into the background before it listens)
i=1
while [ $i -le "$N" ]; do
  t=0
  until [ "$(ssh -F "$D/ssh_config" "h$i" 'echo $MLX_CLUSTER_HOST' 2> /dev/null)" = "h$i" ]; do
    t=$((t + 1))
    if [ $t -ge 50 ]; then
      echo "hosts.sh: h$i does not answer over ssh; its sshd log:" >&2
      cat "$D/log/sshd.h$i.log" >&2 || true
      ssh -F "$D/ssh_config" "h$i" true >&2 || true
      exit 1
    fi
    sleep 0.1
  done
  i=$((i + 1))
done
trap - EXIT
echo "169.254.$X.0/24" > "$D/subnet"
