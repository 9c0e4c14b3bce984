#!/bin/sh
# Registers every connector file in $CONNECTOR_DIR (compose mounts them under
# /connectors) with Kafka Connect: PUT /connectors/<file name>/config creates
# the connector or updates it to the file. Then waits until each runs.
# compose's `register` service runs it once; docker/register_test.go runs it
# against a fake Connect.
set -eu
: "${CONNECT_URL:=http://connect:8083}"
: "${CONNECTOR_DIR:=/connectors}"
: "${POLL_SECONDS:=2}"

tries=0
until curl -fsS -o /dev/null "$CONNECT_URL/connectors"; do
  tries=$((tries + 1))
  [ "$tries" -lt 90 ] || { echo "register: Kafka Connect did not answer at $CONNECT_URL" >&2; exit 1; }
  sleep "$POLL_SECONDS"
done

for file in "$CONNECTOR_DIR"/*.json; do
  name=$(basename "$file" .json)
  echo "register: $name"
  curl -fsS -X PUT -H 'Content-Type: application/json' --data-binary "@$file" \
    "$CONNECT_URL/connectors/$name/config" >/dev/null
done

# A connector is up once its status lists a RUNNING task; a FAILED one ends
# the wait with Connect's answer, which holds the stack trace.
for file in "$CONNECTOR_DIR"/*.json; do
  name=$(basename "$file" .json)
  tries=0
  while :; do
    status=$(curl -fsS "$CONNECT_URL/connectors/$name/status" || true)
    case "$status" in
      *FAILED*) echo "register: $name failed: $status" >&2; exit 1 ;;
      *'"tasks":[{'*RUNNING*) echo "register: $name running"; break ;;
    esac
    tries=$((tries + 1))
    [ "$tries" -lt 60 ] || { echo "register: $name not running: $status" >&2; exit 1; }
    sleep "$POLL_SECONDS"
  done
done
