#!/usr/bin/env bash
# A local S3 endpoint for tests and single-machine deployments: OpenStack Swift
# (Debian packages) with the s3api middleware, one node, one replica.
#
#   scripts/s3-server.sh install   install the Debian packages if missing (root)
#   scripts/s3-server.sh start     configure and (re)start; prints the env exports
#   scripts/s3-server.sh stop      stop the processes this script started
#   scripts/s3-server.sh status    exit 0 when every server answers /healthcheck
#   scripts/s3-server.sh env       print the VAULT_S3_* exports
#   scripts/s3-server.sh wipe      stop, then delete all state (objects included)
#
# Usage in a shell or CI job:   eval "$(scripts/s3-server.sh start)"
#
# Settings (environment):
#   VAULT_S3_STATE_DIR     state folder (default /tmp/ofpra-vault-swift); must be on
#                          a filesystem with user.* xattrs (ext4, xfs)
#   VAULT_S3_PORT          proxy (S3) port, default 18080
#   VAULT_S3_BACKEND_PORT  first of four ports for object, container, account
#                          servers and memcached, default 16200 (16200-16203)
#   VAULT_S3_BUCKET        bucket created at start, default ofpra-vault-test
#   VAULT_S3_REGION        s3api location; clients must use the same, default us-east-1
#   VAULT_S3_SECRET_KEY    secret of the S3 user vault:tester; default: random,
#                          generated once and kept in the state folder
#
# Why these choices (see /work/shared/S3-SERVER-NOTES.md):
# - Debian's Swift runs on /usr/bin/python3, never on a virtualenv interpreter.
# - Ports avoid Debian's defaults (8080, 6200-6202, memcached 11211) so this can
#   run beside the packaged services on a systemd host.
# - With workers = 0 Swift does not drop root privileges, so every server is
#   started as the swift user with setpriv.
# - Without /dev/log Swift's logs vanish: servers run with -v, output in log/.
# - /etc/swift/swift.conf (hash path suffix) is read from that fixed path; it is
#   only created when missing and never rewritten.
set -euo pipefail

STATE_DIR="${VAULT_S3_STATE_DIR:-/tmp/ofpra-vault-swift}"
PROXY_PORT="${VAULT_S3_PORT:-18080}"
BACKEND_PORT="${VAULT_S3_BACKEND_PORT:-16200}"
BUCKET="${VAULT_S3_BUCKET:-ofpra-vault-test}"
REGION="${VAULT_S3_REGION:-us-east-1}"
S3_ACCOUNT="vault"
S3_USER="tester"

OBJECT_PORT=$((BACKEND_PORT))
CONTAINER_PORT=$((BACKEND_PORT + 1))
ACCOUNT_PORT=$((BACKEND_PORT + 2))
MEMCACHED_PORT=$((BACKEND_PORT + 3))

PY=/usr/bin/python3
PACKAGES=(swift swift-proxy swift-object swift-container swift-account memcached curl)
SERVERS=(object container account proxy)
MARKER=".ofpra-vault-swift"

ETC="$STATE_DIR/etc"
DEVICES="$STATE_DIR/srv"
RUN="$STATE_DIR/run"
LOG="$STATE_DIR/log"

log() { printf 's3-server: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

require_root() {
    [[ "$(id -u)" == 0 ]] || die "must run as root (servers are started as the swift user with setpriv)"
}

port_of() {
    case "$1" in
        object) echo "$OBJECT_PORT" ;;
        container) echo "$CONTAINER_PORT" ;;
        account) echo "$ACCOUNT_PORT" ;;
        proxy) echo "$PROXY_PORT" ;;
        memcached) echo "$MEMCACHED_PORT" ;;
    esac
}

# --- install ---------------------------------------------------------------------
missing_packages() {
    local p
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
    done
}

cmd_install() {
    local missing
    missing=$(missing_packages | tr '\n' ' ')
    if [[ -z "${missing// /}" ]]; then
        log "packages already installed"
        return 0
    fi
    require_root
    export DEBIAN_FRONTEND=noninteractive
    local apt=(apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
    # Only refresh the package lists when there are none, or when the install
    # fails because they are stale.
    if ! compgen -G "/var/lib/apt/lists/*_Packages*" >/dev/null; then
        log "apt-get update (no package lists yet)"
        "${apt[@]}" update -q >&2
    fi
    log "installing: $missing"
    # shellcheck disable=SC2086  # word splitting of the package list is intended
    if ! "${apt[@]}" install -y -q --no-install-recommends $missing >&2; then
        log "install failed; refreshing package lists and retrying"
        "${apt[@]}" update -q >&2
        # shellcheck disable=SC2086
        "${apt[@]}" install -y -q --no-install-recommends $missing >&2
    fi
}

# --- processes -------------------------------------------------------------------
# A pid counts as ours only if its command line still is the one we started (the
# state folder's config, or memcached on our port): pid files can outlive a reboot
# and pids get reused.
pid_alive() {
    local name="$1" pid mark
    [[ -f "$RUN/$name.pid" ]] || return 1
    pid=$(cat "$RUN/$name.pid")
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    running "$pid" || return 1
    if [[ "$name" == memcached ]]; then
        mark="memcached -u memcache -l 127.0.0.1 -p $MEMCACHED_PORT "
    else
        mark="$ETC/$name-server.conf"
    fi
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -e "$mark" || return 1
    echo "$pid"
}

# Running, as opposed to gone or a zombie: an exited server whose parent (our
# shell) is gone waits for init to reap it, and kill -0 still succeeds on it.
running() {
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n "$state" && "$state" != Z && "$state" != X ]]
}

stop_one() {
    local name="$1" pid i
    if pid=$(pid_alive "$name"); then
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 100); do
            running "$pid" || break
            sleep 0.05
        done
        if running "$pid"; then
            log "$name (pid $pid) ignored SIGTERM; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        log "stopped $name (pid $pid)"
    fi
    rm -f "$RUN/$name.pid"
}

cmd_stop() {
    [[ -d "$RUN" ]] || { log "not running (no state in $STATE_DIR)"; return 0; }
    local name
    for name in proxy object container account memcached; do
        stop_one "$name"
    done
}

healthy() {
    curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$(port_of "$1")/healthcheck" 2>/dev/null
}

cmd_status() {
    local name rc=0 pid
    for name in "${SERVERS[@]}"; do
        if pid=$(pid_alive "$name") && healthy "$name"; then
            log "$name: up (pid $pid, port $(port_of "$name"))"
        else
            log "$name: DOWN (port $(port_of "$name"))"
            rc=3
        fi
    done
    if pid=$(pid_alive memcached); then
        log "memcached: up (pid $pid, port $MEMCACHED_PORT)"
    else
        log "memcached: DOWN (port $MEMCACHED_PORT)"
        rc=3
    fi
    return "$rc"
}

# --- configuration ---------------------------------------------------------------
secret_key() {
    if [[ -n "${VAULT_S3_SECRET_KEY:-}" ]]; then
        echo "$VAULT_S3_SECRET_KEY"
    elif [[ -s "$STATE_DIR/secret" ]]; then
        cat "$STATE_DIR/secret"
    else
        return 1
    fi
}

prepare_state_dir() {
    if [[ -d "$STATE_DIR" && ! -e "$STATE_DIR/$MARKER" ]] && [[ -n "$(ls -A "$STATE_DIR")" ]]; then
        die "$STATE_DIR exists, is not empty and was not made by this script; choose another VAULT_S3_STATE_DIR"
    fi
    mkdir -p "$STATE_DIR" "$ETC" "$RUN" "$LOG" "$DEVICES/d1"
    touch "$STATE_DIR/$MARKER"
    chmod 0755 "$STATE_DIR"
    chown -R swift:swift "$DEVICES"
    chmod 0750 "$ETC"
    chown root:swift "$ETC"
    if [[ -z "${VAULT_S3_SECRET_KEY:-}" && ! -s "$STATE_DIR/secret" ]]; then
        (umask 077 && od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$STATE_DIR/secret")
    fi

    # The swift user must reach its data folder, and Swift keeps object metadata
    # in user.* extended attributes: fail now with a clear message, not later with
    # a 507 from the object server.
    setpriv --reuid=swift --regid=swift --init-groups "$PY" - "$DEVICES/d1" <<'EOF' ||
import os, sys
probe = os.path.join(sys.argv[1], ".xattr-probe")
open(probe, "w").close()
try:
    os.setxattr(probe, "user.swift.probe", b"1")
finally:
    os.unlink(probe)
EOF
        die "$DEVICES/d1 is not writable by the swift user or lacks user.* xattrs (use ext4/xfs, and a path every user can traverse)"

    if [[ ! -f /etc/swift/swift.conf ]]; then
        # Normally shipped by the Debian package. Never rewritten: changing the
        # hash suffix once data exists makes every object unreachable.
        log "creating /etc/swift/swift.conf"
        mkdir -p /etc/swift
        local suffix
        suffix=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
        printf '[swift-hash]\nswift_hash_path_suffix = %s\nswift_hash_path_prefix = \n\n[storage-policy:0]\nname = Policy-0\ndefault = yes\n' \
            "$suffix" >/etc/swift/swift.conf
    fi
}

write_server_conf() {
    local name="$1" port="$2"
    cat >"$ETC/$name-server.conf" <<EOF
# Generated by scripts/s3-server.sh; rewritten at every start.
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $port
workers = 0
user = swift
swift_dir = $ETC
devices = $DEVICES
mount_check = false
disable_fallocate = true
log_name = $name-server

[pipeline:main]
pipeline = healthcheck $name-server

[app:$name-server]
use = egg:swift#$name

[filter:healthcheck]
use = egg:swift#healthcheck
EOF
}

write_proxy_conf() {
    local secret="$1"
    (umask 027 && cat >"$ETC/proxy-server.conf") <<EOF
# Generated by scripts/s3-server.sh; rewritten at every start.
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $PROXY_PORT
workers = 0
user = swift
swift_dir = $ETC
log_name = proxy-server

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl ratelimit s3api tempauth copy container-quotas account-quotas slo dlo versioned_writes symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:s3api]
use = egg:swift#s3api
location = $REGION
# S3 allows 10000 parts; the defaults (1000) would cap a 16 MiB-part upload at 16 GB.
max_upload_part_num = 10000

[filter:tempauth]
use = egg:swift#tempauth
user_${S3_ACCOUNT}_${S3_USER} = $secret .admin

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$MEMCACHED_PORT

[filter:slo]
use = egg:swift#slo
max_manifest_segments = 10000

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:tempurl]
use = egg:swift#tempurl
[filter:ratelimit]
use = egg:swift#ratelimit
[filter:copy]
use = egg:swift#copy
[filter:container-quotas]
use = egg:swift#container_quotas
[filter:account-quotas]
use = egg:swift#account_quotas
[filter:dlo]
use = egg:swift#dlo
[filter:versioned_writes]
use = egg:swift#versioned_writes
[filter:symlink]
use = egg:swift#symlink
EOF
    chgrp swift "$ETC/proxy-server.conf"
}

# Rings hold the servers' ports, so they are rebuilt when the ports change. With one
# device and one replica every partition lives on d1, so a rebuild moves no data.
build_rings() {
    local stamp="$OBJECT_PORT $CONTAINER_PORT $ACCOUNT_PORT"
    if [[ -f "$ETC/rings.stamp" && "$(cat "$ETC/rings.stamp")" == "$stamp" ]]; then
        return 0
    fi
    log "building rings"
    # One interpreter for the three rings (swift-ring-builder would take nine).
    "$PY" - "$ETC" "$OBJECT_PORT" "$CONTAINER_PORT" "$ACCOUNT_PORT" <<'EOF'
import os, sys
from swift.common.ring import RingBuilder

etc = sys.argv[1]
for ring, port in zip(("object", "container", "account"), sys.argv[2:5]):
    builder = RingBuilder(10, 1, 1)  # 2**10 partitions, 1 replica, min_part_hours 1
    builder.add_dev({"region": 1, "zone": 1, "ip": "127.0.0.1", "port": int(port),
                     "device": "d1", "weight": 100})
    builder.rebalance()
    builder.save(os.path.join(etc, ring + ".builder"))
    builder.get_ring().save(os.path.join(etc, ring + ".ring.gz"))
EOF
    chgrp swift "$ETC"/*.ring.gz
    chmod 0640 "$ETC"/*.ring.gz
    echo "$stamp" >"$ETC/rings.stamp"
}

# --- start -----------------------------------------------------------------------
check_port_free() {
    local port="$1"
    if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/" 2>/dev/null \
        || (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        die "port $port is already in use by another process"
    fi
}

launch() {
    local name="$1"
    shift
    # setsid: the servers outlive the shell that started them. setpriv and setsid
    # exec, so $! is the server's own pid.
    setsid "$@" </dev/null >>"$LOG/$name.log" 2>&1 &
    echo $! >"$RUN/$name.pid"
}

wait_healthy() {
    local name deadline=$((SECONDS + 30))
    for name in "${SERVERS[@]}"; do
        until healthy "$name"; do
            if ! pid_alive "$name" >/dev/null; then
                tail -n 30 "$LOG/$name.log" >&2 || true
                die "$name server exited; log: $LOG/$name.log"
            fi
            if ((SECONDS > deadline)); then
                tail -n 30 "$LOG/$name.log" >&2 || true
                die "$name server did not answer /healthcheck within 30 s; log: $LOG/$name.log"
            fi
            sleep 0.1
        done
    done
}

create_bucket() {
    local secret="$1" headers token url
    # The S3 bucket is a Swift container; the Swift API with tempauth creates it
    # without an S3 signing client. PUT on an existing container is a no-op.
    headers=$(curl -fsS --max-time 10 -D - -o /dev/null \
        -H "X-Auth-User: $S3_ACCOUNT:$S3_USER" -H "X-Auth-Key: $secret" \
        "http://127.0.0.1:$PROXY_PORT/auth/v1.0") || die "tempauth login failed"
    token=$(printf '%s' "$headers" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-auth-token"{print $2}')
    url=$(printf '%s' "$headers" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-storage-url"{print $2}')
    [[ -n "$token" && -n "$url" ]] || die "tempauth answered without a token"
    curl -fsS --max-time 10 -o /dev/null -X PUT -H "X-Auth-Token: $token" "$url/$BUCKET" \
        || die "could not create bucket $BUCKET"
}

cmd_start() {
    require_root
    [[ -z "$(missing_packages)" ]] || die "packages missing: $(missing_packages | tr '\n' ' '); run: $0 install"
    if [[ -d "$RUN" ]]; then
        cmd_stop
    fi
    prepare_state_dir
    local secret port
    secret=$(secret_key)
    for port in "$PROXY_PORT" "$OBJECT_PORT" "$CONTAINER_PORT" "$ACCOUNT_PORT" "$MEMCACHED_PORT"; do
        check_port_free "$port"
    done
    write_server_conf object "$OBJECT_PORT"
    write_server_conf container "$CONTAINER_PORT"
    write_server_conf account "$ACCOUNT_PORT"
    write_proxy_conf "$secret"
    build_rings

    # memcached drops to its own user by itself. tempauth and the proxy's info
    # caches use it.
    launch memcached memcached -u memcache -l 127.0.0.1 -p "$MEMCACHED_PORT" -U 0 -m 64
    local name
    for name in object container account proxy; do
        launch "$name" setpriv --reuid=swift --regid=swift --init-groups \
            "$PY" "/usr/bin/swift-$name-server" "$ETC/$name-server.conf" -v
    done
    wait_healthy
    create_bucket "$secret"
    log "up: S3 on http://127.0.0.1:$PROXY_PORT, bucket $BUCKET, state in $STATE_DIR"
    cmd_env
}

cmd_env() {
    local secret
    secret=$(secret_key) || die "no secret yet in $STATE_DIR; run: $0 start"
    echo "export VAULT_S3_ENDPOINT=127.0.0.1:$PROXY_PORT VAULT_S3_ACCESS_KEY=$S3_ACCOUNT:$S3_USER" \
        "VAULT_S3_SECRET_KEY=$secret VAULT_S3_BUCKET=$BUCKET VAULT_S3_REGION=$REGION VAULT_S3_SECURE=false"
}

cmd_wipe() {
    cmd_stop
    if [[ -d "$STATE_DIR" ]]; then
        [[ -e "$STATE_DIR/$MARKER" ]] || die "$STATE_DIR was not made by this script; not deleting it"
        rm -rf --one-file-system "$STATE_DIR"
        log "removed $STATE_DIR"
    fi
}

case "${1:-}" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    restart) cmd_start ;;
    status) cmd_status ;;
    env) cmd_env ;;
    wipe) cmd_wipe ;;
    *)
        echo "usage: $0 {install|start|stop|restart|status|env|wipe}" >&2
        exit 2
        ;;
esac
