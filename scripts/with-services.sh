#!/usr/bin/env bash
# Run a command with a real PostgreSQL and Redis available.
#
# Usage: scripts/with-services.sh COMMAND [ARGS...]
#
# COMMAND runs with DATABASE_URL and REDIS_URL exported and this script exits
# with COMMAND's exit code. A URL that is already set (non-empty) in the
# environment is passed through untouched and nothing is started for it;
# otherwise a throwaway server is started from local binaries (installing the
# Debian package if the binary is missing), bound to 127.0.0.1 on a free port,
# with its state in a fresh temp dir. Whatever this script started is stopped
# and its temp dir removed on every way out: normal exit, error, Ctrl-C,
# SIGTERM or SIGHUP.
#
# The throwaway servers never touch a PostgreSQL/Redis the machine may already
# run on the default ports: they use their own data dirs, ports and sockets.
set -euo pipefail

readonly PROG=with-services
readonly READY_TIMEOUT=30 # seconds to wait for each service to accept connections

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

if [[ $# -eq 0 ]]; then
  printf 'usage: %s COMMAND [ARGS...]\n' "$0" >&2
  exit 2
fi

# State that cleanup() needs. Empty means "not started by us".
pg_tmp=""      # temp dir holding the PostgreSQL data dir, socket and log
pg_bin=""      # /usr/lib/postgresql/NN/bin of the server we started
pg_started=""  # set once pg_ctl start has been issued
redis_tmp=""   # temp dir holding the Redis working dir and log
redis_pid=""   # pid of the redis-server we started
child_pid=""   # pid of COMMAND

# Run a PostgreSQL server-side binary. initdb and pg_ctl refuse to run as root,
# so as root they run as the unprivileged `postgres` user instead.
as_pg_owner() {
  if [[ $EUID -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# SC2317: shellcheck 0.9 cannot see that trap handlers are reachable.
# shellcheck disable=SC2317
cleanup() {
  local rc=$?
  # A second Ctrl-C/TERM must not interrupt the teardown half-way and leave
  # a server behind.
  trap '' INT TERM HUP QUIT

  if [[ -n $pg_started ]]; then
    # Immediate mode: the data is thrown away anyway, so skip the checkpoint.
    if ! as_pg_owner "$pg_bin/pg_ctl" stop -D "$pg_tmp/data" -m immediate -w -t 30 >/dev/null 2>&1; then
      # pg_ctl could not do it (e.g. interrupted before postmaster.pid was
      # written, or a broken start): kill the postmaster by pid if we know it.
      local pm_pid=""
      if [[ -r $pg_tmp/data/postmaster.pid ]]; then
        read -r pm_pid <"$pg_tmp/data/postmaster.pid" || true
      fi
      if [[ $pm_pid =~ ^[0-9]+$ ]]; then
        kill -QUIT "$pm_pid" 2>/dev/null || true
        # The postmaster is not our child (pg_ctl daemonizes it), so poll.
        local i
        for ((i = 0; i < 50; i++)); do
          kill -0 "$pm_pid" 2>/dev/null || break
          sleep 0.1
        done
        kill -KILL "$pm_pid" 2>/dev/null || true
      fi
    fi
  fi

  if [[ -n $redis_pid ]]; then
    kill -TERM "$redis_pid" 2>/dev/null || true
    # redis-server is our direct child, so `wait` reaps it (no zombie, and we
    # know it is gone before removing its working dir).
    wait "$redis_pid" 2>/dev/null || true
  fi

  [[ -n $pg_tmp ]] && rm -rf -- "$pg_tmp"
  [[ -n $redis_tmp ]] && rm -rf -- "$redis_tmp"
  exit "$rc"
}
trap cleanup EXIT

# Signals: while COMMAND runs, pass the signal on to it and let its exit code
# become ours (cleanup runs from the EXIT trap afterwards). Before COMMAND has
# started, just exit with the conventional 128+N status; the EXIT trap then
# stops whatever was already started.
# shellcheck disable=SC2317
on_signal() {
  local sig=$1 code=$2
  if [[ -n $child_pid ]] && kill -0 "$child_pid" 2>/dev/null; then
    kill -s "$sig" "$child_pid" 2>/dev/null || true
  else
    exit "$code"
  fi
}
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM
trap 'on_signal HUP 129' HUP

# Ask the kernel for a free port by binding port 0. There is a tiny window
# between closing this socket and the server binding it; acceptable for tests.
free_port() {
  if command -v python3 >/dev/null 2>&1 &&
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])' 2>/dev/null; then
    return 0
  fi
  # No usable python3: try random high ports until one refuses connections.
  local port i
  for ((i = 0; i < 100; i++)); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  die "could not find a free TCP port on 127.0.0.1"
}

# Install a Debian package. Try without `apt-get update` first: it is slow and
# the package lists on the machine are usually recent enough.
apt_install() {
  [[ $EUID -eq 0 ]] || die "$1 is not installed and installing it needs root (apt-get install $1)"
  log "installing Debian package $1"
  export DEBIAN_FRONTEND=noninteractive
  # apt's chatter goes to stderr so that COMMAND's stdout stays clean.
  if ! apt-get install -y --no-install-recommends "$1" >&2; then
    apt-get update >&2
    apt-get install -y --no-install-recommends "$1" >&2
  fi
}

# Newest PostgreSQL bin dir from Debian's versioned layout, or nothing.
newest_pg_bin() {
  local initdbs=(/usr/lib/postgresql/*/bin/initdb)
  [[ -e ${initdbs[0]} ]] || return 0
  local newest
  newest=$(printf '%s\n' "${initdbs[@]}" | sort -V | tail -n 1)
  dirname "$newest"
}

start_postgres() {
  pg_bin=$(newest_pg_bin)
  if [[ -z $pg_bin ]]; then
    apt_install postgresql
    pg_bin=$(newest_pg_bin)
    [[ -n $pg_bin ]] || die "PostgreSQL: no /usr/lib/postgresql/*/bin/initdb even after installing postgresql"
  fi

  pg_tmp=$(mktemp -d -t with-services-pg.XXXXXX)
  if [[ $EUID -eq 0 ]]; then
    if ! id -u postgres >/dev/null 2>&1; then
      useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin postgres
    fi
    chown postgres: "$pg_tmp"
    # $TMPDIR may point somewhere the postgres user cannot reach (e.g. under
    # /root); fall back to /tmp, which is always traversable.
    if ! runuser -u postgres -- test -w "$pg_tmp"; then
      rm -rf -- "$pg_tmp"
      pg_tmp=$(mktemp -d -p /tmp with-services-pg.XXXXXX)
      chown postgres: "$pg_tmp"
    fi
  fi

  # -U root: the URL below connects as `root`, whoever runs this script.
  # --no-sync and fsync=off: durability is pointless for a throwaway cluster.
  as_pg_owner "$pg_bin/initdb" -D "$pg_tmp/data" -U root -A trust --no-sync \
    -E UTF8 --locale=C >"$pg_tmp/initdb.log" 2>&1 ||
    die "PostgreSQL initdb failed: $(cat "$pg_tmp/initdb.log")"

  local port
  port=$(free_port)
  # Listen on TCP 127.0.0.1 only and keep the unix socket inside the temp dir
  # so nothing collides with a system cluster's /var/run/postgresql socket.
  # -W: don't let pg_ctl wait; we wait ourselves with pg_isready below.
  pg_started=1
  as_pg_owner "$pg_bin/pg_ctl" start -W -D "$pg_tmp/data" -l "$pg_tmp/postgres.log" \
    -o "-c listen_addresses=127.0.0.1 -p $port -k '$pg_tmp' -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    >/dev/null

  local deadline=$((SECONDS + READY_TIMEOUT))
  # Explicit -h/-p/-U everywhere so PGHOST/PGPORT/PGUSER from the caller's
  # environment cannot redirect these checks to another server.
  until "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U root -d postgres; do
    if ((SECONDS >= deadline)); then
      log "PostgreSQL log ($pg_tmp/postgres.log):"
      tail -n 20 "$pg_tmp/postgres.log" >&2 2>/dev/null || true
      die "throwaway PostgreSQL did not accept connections on 127.0.0.1:$port within ${READY_TIMEOUT}s"
    fi
    sleep 0.2
  done

  # The test runner creates test_opsconsole itself; the base database is
  # created too so that manage.py commands other than `test` work as well.
  "$pg_bin/createdb" -h 127.0.0.1 -p "$port" -U root opsconsole ||
    die "PostgreSQL: createdb opsconsole failed"

  export DATABASE_URL="postgres://root@127.0.0.1:$port/opsconsole"
  log "started throwaway PostgreSQL on 127.0.0.1:$port"
}

start_redis() {
  if ! command -v redis-server >/dev/null 2>&1; then
    apt_install redis-server
  fi
  command -v redis-cli >/dev/null 2>&1 || apt_install redis-tools

  redis_tmp=$(mktemp -d -t with-services-redis.XXXXXX)
  local port
  port=$(free_port)
  # --save "" / --appendonly no: no persistence. --dir: anything Redis might
  # still write lands in the temp dir, not in the caller's cwd.
  # setsid: own session, so a Ctrl-C in the terminal doesn't kill Redis under
  # COMMAND's feet while it is still shutting down; cleanup() stops it. (pg_ctl
  # already detaches the postmaster the same way.) Output goes to a log file so
  # Redis never holds on to the caller's stdout/stderr pipes.
  setsid redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
    --daemonize no --dir "$redis_tmp" \
    </dev/null >"$redis_tmp/redis.log" 2>&1 &
  redis_pid=$!

  local deadline=$((SECONDS + READY_TIMEOUT))
  until [[ $(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null) == PONG ]]; do
    if ! kill -0 "$redis_pid" 2>/dev/null; then
      log "Redis log ($redis_tmp/redis.log):"
      tail -n 20 "$redis_tmp/redis.log" >&2 2>/dev/null || true
      die "throwaway Redis on 127.0.0.1:$port exited during startup"
    fi
    if ((SECONDS >= deadline)); then
      log "Redis log ($redis_tmp/redis.log):"
      tail -n 20 "$redis_tmp/redis.log" >&2 2>/dev/null || true
      die "throwaway Redis did not answer PING on 127.0.0.1:$port within ${READY_TIMEOUT}s"
    fi
    sleep 0.1
  done

  export REDIS_URL="redis://127.0.0.1:$port/0"
  log "started throwaway Redis on 127.0.0.1:$port"
}

if [[ -n ${DATABASE_URL:-} ]]; then
  export DATABASE_URL
else
  start_postgres
fi

if [[ -n ${REDIS_URL:-} ]]; then
  export REDIS_URL
else
  start_redis
fi

# Run COMMAND in the background and wait for it, rather than in the
# foreground: bash only runs traps between foreground commands, so a SIGTERM
# sent to this script would otherwise be ignored until COMMAND finished on its
# own. Two details keep COMMAND behaving as if it were in the foreground:
#  - `<&0`: without job control, bash gives background jobs /dev/null as stdin;
#  - `trap - INT QUIT`: ... and makes them ignore SIGINT/SIGQUIT, which would
#    make Ctrl-C do nothing to COMMAND (e.g. pytest).
(
  trap - INT QUIT
  exec "$@"
) <&0 &
child_pid=$!

# `wait` also returns (with 128+N) when a trapped signal arrives; the trap has
# forwarded it to COMMAND, so keep waiting until COMMAND is really gone.
while :; do
  wait "$child_pid" || true
  kill -0 "$child_pid" 2>/dev/null || break
done
# bash remembers the exit status of a reaped background job, so this last
# wait returns COMMAND's own exit code even if a signal interrupted the
# wait above just as COMMAND ended.
status=0
wait "$child_pid" || status=$?
exit "$status"
