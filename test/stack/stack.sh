#!/usr/bin/env bash
# The local stack pgsink's tests and demo run against: PostgreSQL 15 (Debian),
# Kafka 4.3 in KRaft combined mode, Kafka Connect with Debezium 3.6.1.Final and
# Apicurio's Avro converter, and Apicurio Registry 2.6.13 (the schema registry
# the Avro format reads through its Confluent-compatible API), all on loopback,
# all started from jars fetched by Maven. No Docker.
#
#   stack.sh up      start whatever is not running yet (a running stack is reused)
#   stack.sh down    stop exactly the processes this script started (pid files)
#   stack.sh env     print the addresses as shell exports (also in $STATE/env)
#   stack.sh status  one line per service
#   stack.sh fetch   download the jars into the cache (up does it when needed)
#   stack.sh registry-down / registry-up   stop / start the schema registry alone
#
# Everything is configurable through the environment; see the defaults below.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

STATE=${PGSINK_STACK_DIR:-$repo/.stack}
CACHE=${PGSINK_JAR_CACHE:-$repo/.cache/jars}
PG_PORT=${PGSINK_PG_PORT:-55432}
KAFKA_PORT=${PGSINK_KAFKA_PORT:-19092}
CONTROLLER_PORT=${PGSINK_KAFKA_CONTROLLER_PORT:-19093}
# The broker's TLS listeners, beside the plaintext one the rest of the stack
# uses: SSL, and SASL_SSL with SCRAM-SHA-256 (users are added through the
# admin API by the tests that need them). Next to KAFKA_PORT by default, so a
# stack on other ports moves them too.
KAFKA_SSL_PORT=${PGSINK_KAFKA_SSL_PORT:-$((KAFKA_PORT + 2))}
KAFKA_SASL_PORT=${PGSINK_KAFKA_SASL_PORT:-$((KAFKA_PORT + 3))}
CONNECT_PORT=${PGSINK_CONNECT_PORT:-18083}
REGISTRY_PORT=${PGSINK_REGISTRY_PORT:-18081}
READY_TIMEOUT=${PGSINK_STACK_TIMEOUT:-180}
PG_BIN=${PGSINK_PG_BIN:-/usr/lib/postgresql/15/bin}
JAVA=${JAVA:-java}
HOST=127.0.0.1

# PostgreSQL runs as the unprivileged postgres user when we are root, and
# that user must reach its data folder: when the state folder sits below a
# folder it cannot enter (a mktemp -d clone, a private home), the cluster
# lives under /var/tmp instead, named after the state folder.
pg_home() {
  mkdir -p "$STATE"
  if [ "$(id -u)" = 0 ] && id postgres >/dev/null 2>&1 && ! runuser -u postgres -- test -x "$STATE"; then
    echo "/var/tmp/pgsink-stack-$(printf %s "$STATE" | md5sum | cut -c1-12)/pg"
  else
    echo "$STATE/pg"
  fi
}

log() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- helpers

# alive PIDFILE MARKER: the pid in PIDFILE runs and its command line names
# MARKER (our state folder), so a recycled pid is never mistaken for ours.
alive() {
  local pidfile=$1 marker=$2 pid
  [ -f "$pidfile" ] || return 1
  pid=$(head -n1 "$pidfile" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$marker"
}

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# port_free PORT WHAT VARIABLE: refuse to start when something else (another
# checkout's stack, a system service) already listens on our port.
port_free() {
  port_open "$1" || return 0
  die "$2: port $HOST:$1 is already in use by a process this stack did not start (another checkout's stack?). Stop it, or choose another port with $3."
}

# wait_for WHAT LOGFILE PIDFILE MARKER CHECK...: poll CHECK until it succeeds,
# failing fast when the process died and with the log's tail on time-out.
wait_for() {
  local what=$1 logfile=$2 pidfile=$3 marker=$4; shift 4
  local deadline=$((SECONDS + READY_TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    # kill -0, not alive: right after `nohup java … &` the pid is still the
    # forked shell, whose command line does not name the marker yet, and
    # alive would call a starting service dead. The pid was written by this
    # very run, so it cannot be a recycled one.
    if ! kill -0 "$(head -n1 "$pidfile" 2>/dev/null)" 2>/dev/null; then
      tail -n 40 "$logfile" >&2 || true
      die "$what exited during start-up; full log: $logfile"
    fi
    if [ $SECONDS -ge $deadline ]; then
      tail -n 40 "$logfile" >&2 || true
      die "$what not ready after ${READY_TIMEOUT}s (PGSINK_STACK_TIMEOUT); full log: $logfile"
    fi
    sleep 0.5
  done
}

# stop_pid NAME PIDFILE MARKER: TERM, wait up to 30 s, then KILL.
stop_pid() {
  local name=$1 pidfile=$2 marker=$3 pid i
  if ! alive "$pidfile" "$marker"; then
    rm -f "$pidfile"
    log "$name: not running"
    return 0
  fi
  pid=$(head -n1 "$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 60); do
    alive "$pidfile" "$marker" || break
    sleep 0.5
  done
  if alive "$pidfile" "$marker"; then
    log "$name: still running after 30s, sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  # Wait until the process is gone from the process table, not just exiting.
  for i in $(seq 1 20); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
  done
  rm -f "$pidfile"
  log "$name: stopped (pid $pid)"
}

java_opts() {
  echo "-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true"
}

# ---------------------------------------------------------------- jars

# fetch_jdbc adds the benchmark's peer, the Debezium JDBC sink, as its own
# plugin folder to a cache that lacks it (caches fetched before it existed).
fetch_jdbc() {
  [ -d "$CACHE/plugins/debezium-jdbc" ] && return 0
  command -v mvn >/dev/null || die "mvn is not installed (apt-get install -y maven)"
  log "fetching the Debezium JDBC sink into $CACHE/plugins/debezium-jdbc"
  rm -rf "$CACHE/plugins/debezium-jdbc.tmp"
  mvn -q -B -f "$here/pom.xml" -Pdebezium-jdbc dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$CACHE/plugins/debezium-jdbc.tmp" >&2
  mv "$CACHE/plugins/debezium-jdbc.tmp" "$CACHE/plugins/debezium-jdbc"
}

# fetch_registry adds the schema registry (the unpacked zip:all release
# bundle) and Apicurio's Connect converter (its own plugin folder: Debezium's
# folder ships another Jackson) to a cache that lacks them. They live in
# registry-pom.xml so that a cache fetched before them is completed, not
# fetched again.
fetch_registry() {
  local app=$CACHE/apicurio-registry conv=$CACHE/plugins/apicurio-converter
  [ -f "$app/.complete" ] && [ -f "$conv/.complete" ] && return 0
  command -v mvn >/dev/null || die "mvn is not installed (apt-get install -y maven)"
  if [ ! -f "$app/.complete" ]; then
    log "fetching Apicurio Registry into $app"
    rm -rf "$app.tmp" "$app.zip" "$app"
    command -v unzip >/dev/null || die "unzip is not installed (apt-get install -y unzip)"
    # copy, then unzip: dependency:unpack leaves markers beside the pom that
    # make it skip the bundle on the next fetch into an empty folder.
    mvn -q -B -f "$here/registry-pom.xml" dependency:copy \
      -Dartifact=io.apicurio:apicurio-registry-app:2.6.13.Final:zip:all -DoutputDirectory="$app.zip" >&2
    unzip -q -d "$app.tmp" "$app.zip"/apicurio-registry-app-2.6.13.Final-all.zip
    rm -rf "$app.zip"
    [ -f "$app.tmp/$REGISTRY_RUNNER" ] || die "the Apicurio bundle has no $REGISTRY_RUNNER"
    touch "$app.tmp/.complete"
    mv "$app.tmp" "$app"
  fi
  if [ ! -f "$conv/.complete" ]; then
    log "fetching Apicurio's Avro converter into $conv"
    rm -rf "$conv.tmp" "$conv"
    mvn -q -B -f "$here/registry-pom.xml" -Pregistry-converter dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$conv.tmp" >&2
    # The worker discovers plugins by their ServiceLoader manifests
    # (plugin.discovery=service_load) and Apicurio's jar ships none.
    mkdir -p "$conv.tmp/manifest/META-INF/services"
    echo io.apicurio.registry.utils.converter.AvroConverter \
      >"$conv.tmp/manifest/META-INF/services/org.apache.kafka.connect.storage.Converter"
    (cd "$conv.tmp/manifest" && jar cf ../apicurio-converter-manifest.jar META-INF) ||
      die "could not build the converter's ServiceLoader manifest jar (jar from a JDK is needed)"
    rm -rf "$conv.tmp/manifest"
    touch "$conv.tmp/.complete"
    mv "$conv.tmp" "$conv"
  fi
}

# pom_digest names what a cache was fetched for: the content of pom.xml,
# not its modification time, which every fresh clone or worktree renews (a
# time comparison made each new checkout fetch again and, with a jar cache
# shared between stacks, delete jars running services still read).
pom_digest() {
  sha256sum "$here/pom.xml" | cut -d' ' -f1
}

fetch() {
  local digest
  digest=$(pom_digest)
  # A cache marked before the digest was written (an empty .complete) and
  # newer than pom.xml is taken as it was before: complete for this pom.
  if [ -f "$CACHE/.complete" ] && [ ! -s "$CACHE/.complete" ] && [ "$CACHE/.complete" -nt "$here/pom.xml" ]; then
    echo "$digest" >"$CACHE/.complete"
  fi
  if [ -f "$CACHE/.complete" ] && [ "$(cat "$CACHE/.complete")" = "$digest" ]; then
    fetch_jdbc
    fetch_registry
    return 0
  fi
  command -v mvn >/dev/null || die "mvn is not installed (apt-get install -y maven)"
  log "fetching jars from Maven Central into $CACHE (first run only)"
  local t0=$SECONDS
  rm -rf "$CACHE.tmp" && mkdir -p "$CACHE.tmp"
  mvn -q -B -f "$here/pom.xml" -Pkafka dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$CACHE.tmp/kafka" >&2
  mvn -q -B -f "$here/pom.xml" -Pdebezium-postgres dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$CACHE.tmp/plugins/debezium-postgres" >&2
  mvn -q -B -f "$here/pom.xml" -Pdebezium-jdbc dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$CACHE.tmp/plugins/debezium-jdbc" >&2
  rm -rf "$CACHE" && mv "$CACHE.tmp" "$CACHE"
  echo "$digest" >"$CACHE/.complete"
  fetch_registry
  log "jars fetched in $((SECONDS - t0))s"
}

# ---------------------------------------------------------------- PostgreSQL

pg_install() {
  [ -x "$PG_BIN/postgres" ] && return 0
  log "PostgreSQL 15 not found in $PG_BIN: installing Debian's postgresql-15"
  [ "$(id -u)" = 0 ] || die "PostgreSQL 15 is missing and installing it needs root"
  DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql-15 postgresql-client-15 >&2
  [ -x "$PG_BIN/postgres" ] || die "postgresql-15 installed but $PG_BIN/postgres is missing"
}

# as_pg runs a PostgreSQL binary as the unprivileged postgres user when we are
# root (initdb and postgres refuse to run as root).
as_pg() {
  if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

# ---------------------------------------------------------------- TLS

# tls_init makes, once, a private CA and a server certificate for localhost
# and 127.0.0.1 that PostgreSQL and the broker's TLS listeners present, so
# that clients can verify them (sslmode=verify-full, ssl.ca.location).
tls_init() {
  local dir=$STATE/tls
  [ -s "$dir/server.pem" ] && return 0
  mkdir -p "$dir"
  command -v openssl >/dev/null || die "openssl is needed for the stack's TLS listeners (apt-get install openssl)"
  (
    cd "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -subj "/CN=pgsink local stack CA" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:%s\n' "$HOST" >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 3650 -extfile server.ext 2>/dev/null
    cat server.key server.crt >server.pem
    chmod 600 ca.key server.key server.pem
  ) || die "tls: could not make the certificates in $dir"
  log "tls: CA and server certificate in $dir"
}

# pg_tls turns TLS on in a running PostgreSQL (a reload is enough), with
# the stack's server certificate copied where the postgres user can read it.
pg_tls() {
  local dir
  dir=$(pg_home)/tls
  mkdir -p "$dir"
  cp "$STATE/tls/server.crt" "$STATE/tls/server.key" "$dir/"
  chmod 600 "$dir/server.key"
  if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$dir"; fi
  psql_admin -d postgres <<SQL
ALTER SYSTEM SET ssl_cert_file = '$dir/server.crt';
ALTER SYSTEM SET ssl_key_file = '$dir/server.key';
ALTER SYSTEM SET ssl = on;
SELECT pg_reload_conf();
SQL
}

pg_ready() { "$PG_BIN/pg_isready" -q -h "$HOST" -p "$PG_PORT"; }

pg_up() {
  pg_install
  local dir data
  dir=$(pg_home) data=$dir/data
  tls_init
  if alive "$data/postmaster.pid" "$data" && pg_ready; then
    log "postgres: already up on $HOST:$PG_PORT"
    pg_tls >/dev/null
    return 0
  fi
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$dir"; fi
  if [ ! -f "$data/PG_VERSION" ]; then
    log "postgres: initdb $data"
    as_pg "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    cat >>"$data/postgresql.conf" <<EOF

# pgsink local stack
listen_addresses = '$HOST'
port = $PG_PORT
unix_socket_directories = '$dir'
wal_level = logical
max_wal_senders = 40
max_replication_slots = 40
max_connections = 200
shared_buffers = 512MB
fsync = on
log_min_messages = warning
# Per-statement cost when a benchmark asks where PostgreSQL's time goes
# (CREATE EXTENSION pg_stat_statements in the database measured).
shared_preload_libraries = 'pg_stat_statements'
EOF
  fi
  port_free "$PG_PORT" postgres PGSINK_PG_PORT
  log "postgres: starting on $HOST:$PG_PORT"
  as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$dir/postgres.log" -w -t "$READY_TIMEOUT" start >/dev/null ||
    { tail -n 8 "$dir/postgres.log" >&2; die "postgres did not start; log: $dir/postgres.log"; }
  pg_bootstrap
  pg_tls >/dev/null
}

psql_admin() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$HOST" -p "$PG_PORT" -U postgres "$@"; }

# pg_bootstrap creates the roles and databases once; every statement is
# idempotent so a half-initialised cluster is repaired on the next `up`.
pg_bootstrap() {
  psql_admin -d postgres <<'SQL'
DO $$
BEGIN
  -- Debezium: logical replication, owns the source tables it publishes.
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'debezium') THEN
    CREATE ROLE debezium LOGIN REPLICATION CREATEDB;
  END IF;
  -- pgsink: writes the target database, nothing more.
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pgsink') THEN
    CREATE ROLE pgsink LOGIN;
  END IF;
END $$;
SQL
  psql_admin -d postgres -tA -c "SELECT 1 FROM pg_database WHERE datname = 'source'" | grep -q 1 ||
    psql_admin -d postgres -c "CREATE DATABASE source OWNER debezium"
  psql_admin -d postgres -tA -c "SELECT 1 FROM pg_database WHERE datname = 'target'" | grep -q 1 ||
    psql_admin -d postgres -c "CREATE DATABASE target OWNER pgsink"
}

pg_down() {
  local data
  data=$(pg_home)/data
  if alive "$data/postmaster.pid" "$data"; then
    as_pg "$PG_BIN/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null || die "pg_ctl stop failed"
    log "postgres: stopped"
  else
    log "postgres: not running"
  fi
}

# ---------------------------------------------------------------- Kafka

kafka_cp() { echo "$CACHE/kafka/*"; }

write_log4j() { # FILE LOGFILE
  cat >"$1" <<EOF
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = $2
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = INFO
logger.reflections.name = org.reflections
logger.reflections.level = ERROR
EOF
}

kafka_ready() {
  port_open "$KAFKA_PORT" && port_open "$KAFKA_SSL_PORT" && port_open "$KAFKA_SASL_PORT" &&
    grep -q 'Kafka Server started' "$STATE/kafka/server.log"
}

kafka_up() {
  local dir=$STATE/kafka
  if alive "$dir/kafka.pid" "$dir" && kafka_ready; then
    log "kafka: already up on $HOST:$KAFKA_PORT"
    return 0
  fi
  if alive "$dir/kafka.pid" "$dir" && port_open "$KAFKA_PORT" && ! port_open "$KAFKA_SSL_PORT"; then
    # Started by a stack.sh from before the TLS listeners: restart it with them.
    log "kafka: running without its TLS listeners; restarting it"
    kafka_down
  fi
  port_free "$KAFKA_PORT" kafka PGSINK_KAFKA_PORT
  port_free "$CONTROLLER_PORT" "kafka controller" PGSINK_KAFKA_CONTROLLER_PORT
  port_free "$KAFKA_SSL_PORT" "kafka SSL listener" PGSINK_KAFKA_SSL_PORT
  port_free "$KAFKA_SASL_PORT" "kafka SASL_SSL listener" PGSINK_KAFKA_SASL_PORT
  tls_init
  mkdir -p "$dir"
  cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=$HOST:$CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$CONTROLLER_PORT,SSL://$HOST:$KAFKA_SSL_PORT,SASL_SSL://$HOST:$KAFKA_SASL_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$CONTROLLER_PORT,SSL://$HOST:$KAFKA_SSL_PORT,SASL_SSL://$HOST:$KAFKA_SASL_PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL
ssl.keystore.type=PEM
ssl.keystore.location=$STATE/tls/server.pem
sasl.enabled.mechanisms=SCRAM-SHA-256
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
log.dirs=$dir/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
delete.topic.enable=true
EOF
  write_log4j "$dir/log4j2.properties" "$dir/server.log"
  if [ ! -f "$dir/data/meta.properties" ]; then
    local id
    id=$("$JAVA" -Xmx256m -cp "$(kafka_cp)" kafka.tools.StorageTool random-uuid 2>"$dir/format.log") ||
      { cat "$dir/format.log" >&2; die "kafka: StorageTool random-uuid failed"; }
    "$JAVA" -Xmx256m -Dlog4j2.configurationFile="$dir/log4j2.properties" -cp "$(kafka_cp)" \
      kafka.tools.StorageTool format --standalone -t "$id" -c "$dir/server.properties" >>"$dir/format.log" 2>&1 ||
      { cat "$dir/format.log" >&2; die "kafka: storage format failed"; }
    log "kafka: storage formatted (cluster $id)"
  fi
  : >"$dir/server.log"
  log "kafka: starting on $HOST:$KAFKA_PORT"
  # shellcheck disable=SC2046
  nohup "$JAVA" -Xms512m -Xmx1g $(java_opts) -Dkafka.logs.dir="$dir" \
    -Dlog4j2.configurationFile="$dir/log4j2.properties" \
    -cp "$(kafka_cp)" kafka.Kafka "$dir/server.properties" >"$dir/stdout.log" 2>&1 &
  echo $! >"$dir/kafka.pid"
  wait_for kafka "$dir/server.log" "$dir/kafka.pid" "$dir" kafka_ready
  log "kafka: ready"
}

kafka_down() { stop_pid kafka "$STATE/kafka/kafka.pid" "$STATE/kafka"; }

# ---------------------------------------------------------------- Kafka Connect

connect_url() { echo "http://$HOST:$CONNECT_PORT"; }

connect_ready() {
  curl -fsS "$(connect_url)/connector-plugins" 2>/dev/null |
    grep -q 'io.debezium.connector.postgresql.PostgresConnector'
}

# connect_has_avro: the worker loaded Apicurio's converter (the Avro format's
# tests and demo need it; a worker started before it existed does not have it).
connect_has_avro() {
  curl -fsS "$(connect_url)/connector-plugins?connectorsOnly=false" 2>/dev/null |
    grep -q 'io.apicurio.registry.utils.converter.AvroConverter'
}

connect_up() {
  local dir=$STATE/connect
  if alive "$dir/connect.pid" "$dir" && connect_ready; then
    if connect_has_avro; then
      log "connect: already up on $(connect_url)"
      return 0
    fi
    # Started by a stack.sh from before the Avro converter: restart it with it.
    log "connect: running without Apicurio's Avro converter; restarting it"
    connect_down
  fi
  port_free "$CONNECT_PORT" "kafka connect" PGSINK_CONNECT_PORT
  mkdir -p "$dir"
  cat >"$dir/worker.properties" <<EOF
bootstrap.servers=$HOST:$KAFKA_PORT
group.id=pgsink-stack-connect
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=true
value.converter.schemas.enable=true
offset.storage.topic=_connect-offsets
offset.storage.replication.factor=1
offset.storage.partitions=1
config.storage.topic=_connect-configs
config.storage.replication.factor=1
status.storage.topic=_connect-status
status.storage.replication.factor=1
status.storage.partitions=1
offset.flush.interval.ms=1000
# One worker: after it drops out of its group (the broker killed under it,
# a poll timeout on a loaded machine) it joins again as a new member, and
# the leader, itself, would hold its connectors unassigned for the default
# five minutes, waiting for the member it was to come back.
scheduled.rebalance.max.delay.ms=5000
listeners=http://$HOST:$CONNECT_PORT
rest.advertised.host.name=$HOST
rest.advertised.port=$CONNECT_PORT
plugin.path=$CACHE/plugins
# Lets a connector tune its own clients (the benchmark raises the JDBC
# sink's consumer.override.max.poll.records).
connector.client.config.override.policy=All
# Every plugin on the path ships ServiceLoader manifests; skipping the
# reflective scan saves seconds at start-up.
plugin.discovery=service_load
EOF
  write_log4j "$dir/log4j2.properties" "$dir/connect.log"
  : >"$dir/connect.log"
  log "connect: starting on $(connect_url)"
  # shellcheck disable=SC2046
  nohup "$JAVA" -Xms256m -Xmx1g $(java_opts) -Dkafka.logs.dir="$dir" \
    -Dlog4j2.configurationFile="$dir/log4j2.properties" \
    -cp "$(kafka_cp)" org.apache.kafka.connect.cli.ConnectDistributed "$dir/worker.properties" \
    >"$dir/stdout.log" 2>&1 &
  echo $! >"$dir/connect.pid"
  wait_for "kafka connect" "$dir/connect.log" "$dir/connect.pid" "$dir" connect_ready
  connect_has_avro || die "kafka connect: Apicurio's AvroConverter is not among its plugins (folder $CACHE/plugins/apicurio-converter); log: $dir/connect.log"
  log "connect: ready, Debezium PostgresConnector and Apicurio's AvroConverter loaded"
}

connect_down() { stop_pid "kafka connect" "$STATE/connect/connect.pid" "$STATE/connect"; }

# ---------------------------------------------------------------- schema registry

REGISTRY_RUNNER=apicurio-registry-app-2.6.13.Final-runner.jar

registry_url() { echo "http://$HOST:$REGISTRY_PORT"; }

registry_ready() {
  curl -fsS "$(registry_url)/health/ready" 2>/dev/null | grep -q '"status" *: *"UP"'
}

# registry_up starts Apicurio Registry on an H2 database in its state folder
# rather than its default in memory: the ids a connector's converter cached
# must still name the same schemas after the registry restarts (the Avro
# outage tests stop and start it).
registry_up() {
  local dir=$STATE/registry
  if alive "$dir/registry.pid" "$dir" && registry_ready; then
    log "registry: already up on $(registry_url)"
    return 0
  fi
  port_free "$REGISTRY_PORT" "schema registry" PGSINK_REGISTRY_PORT
  mkdir -p "$dir"
  : >"$dir/registry.log"
  log "registry: starting on $(registry_url)"
  # -Dpgsink.stack names the state folder on the command line, which is how
  # alive tells our process from a recycled pid.
  nohup "$JAVA" -Xmx256m -XX:+UseSerialGC -Djava.awt.headless=true -Dpgsink.stack="$dir" \
    -Dquarkus.http.host="$HOST" -Dquarkus.http.port="$REGISTRY_PORT" \
    -DREGISTRY_DATASOURCE_URL="jdbc:h2:file:$dir/data/registry" \
    -jar "$CACHE/apicurio-registry/$REGISTRY_RUNNER" >"$dir/registry.log" 2>&1 &
  echo $! >"$dir/registry.pid"
  wait_for "schema registry" "$dir/registry.log" "$dir/registry.pid" "$dir" registry_ready
  log "registry: ready"
}

registry_down() { stop_pid "schema registry" "$STATE/registry/registry.pid" "$STATE/registry"; }

# ---------------------------------------------------------------- env

write_env() {
  mkdir -p "$STATE"
  cat >"$STATE/env" <<EOF
# Written by test/stack/stack.sh; source it or read it from tests (test/stacktest).
# PostgreSQL's data and log: $(pg_home)
export PGSINK_STACK_DIR='$STATE'
export PGSINK_PG_HOST='$HOST'
export PGSINK_PG_PORT='$PG_PORT'
export PGSINK_ADMIN_URL='postgres://postgres@$HOST:$PG_PORT/postgres?sslmode=disable'
export PGSINK_SOURCE_URL='postgres://debezium@$HOST:$PG_PORT/source?sslmode=disable'
export PGSINK_TARGET_URL='postgres://pgsink@$HOST:$PG_PORT/target?sslmode=disable'
export PGSINK_KAFKA_BOOTSTRAP='$HOST:$KAFKA_PORT'
export PGSINK_KAFKA_SSL_BOOTSTRAP='$HOST:$KAFKA_SSL_PORT'
export PGSINK_KAFKA_SASL_SSL_BOOTSTRAP='$HOST:$KAFKA_SASL_PORT'
export PGSINK_TLS_CA='$STATE/tls/ca.crt'
export PGSINK_CONNECT_URL='$(connect_url)'
export PGSINK_KAFKA_JARS='$CACHE/kafka'
export PGSINK_REGISTRY_URL='$(registry_url)'
EOF
}

cmd_up() {
  local t0=$SECONDS
  fetch
  pg_up
  kafka_up
  registry_up
  connect_up
  write_env
  log "stack up in $((SECONDS - t0))s; addresses: $STATE/env (make stack-env)"
}

cmd_down() {
  # The pgsink `make demo` leaves running, if any.
  stop_pid "demo pgsink" "$STATE/demo/pgsink.pid" "demo.yaml"
  connect_down
  registry_down
  kafka_down
  pg_down
}

cmd_status() {
  local rc=0
  local pgdata
  pgdata=$(pg_home)/data
  if alive "$pgdata/postmaster.pid" "$pgdata" && pg_ready; then echo "postgres  up    $HOST:$PG_PORT"; else echo "postgres  down"; rc=1; fi
  if alive "$STATE/kafka/kafka.pid" "$STATE/kafka" && kafka_ready; then echo "kafka     up    $HOST:$KAFKA_PORT"; else echo "kafka     down"; rc=1; fi
  if alive "$STATE/connect/connect.pid" "$STATE/connect" && connect_ready && connect_has_avro; then echo "connect   up    $(connect_url)"; else echo "connect   down"; rc=1; fi
  if alive "$STATE/registry/registry.pid" "$STATE/registry" && registry_ready; then echo "registry  up    $(registry_url)"; else echo "registry  down"; rc=1; fi
  return $rc
}

case "${1:-}" in
  up) cmd_up ;;
  pg-up) pg_up; write_env ;; # PostgreSQL alone: quieter for the sink benchmarks
  registry-up) fetch_registry; registry_up ;;   # the schema registry alone (outage tests)
  registry-down) registry_down ;;
  down) cmd_down ;;
  env) write_env; grep '^export' "$STATE/env" ;;
  status) cmd_status ;;
  fetch) fetch ;;
  *) echo "usage: $0 up|pg-up|registry-up|registry-down|down|env|status|fetch" >&2; exit 2 ;;
esac
