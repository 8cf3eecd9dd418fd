#!/bin/sh
# A shardline node as an Agones GameServer. Agones gives the pod a host
# port and address that players reach; this asks the Agones SDK sidecar for
# them, starts the node with that public URL, tells Agones it is Ready once
# the node's /ready says so, and keeps Agones's health check fed.
# Agones's SIGTERM on scale-down reaches the node (exec below): it hands its
# final state to its region and leaves the fleet.
set -eu
SDK="http://127.0.0.1:${AGONES_SDK_HTTP_PORT:-9358}"
ADMIN="127.0.0.1:${ADMIN_PORT:-9100}"
GS=""
for _ in $(seq 1 60); do
  GS=$(curl -sf "$SDK/gameserver" || true)
  ADDR=$(printf '%s' "$GS" | jq -r '.status.address // empty')
  [ -n "$ADDR" ] && break
  sleep 1
done
PORT=$(printf '%s' "$GS" | jq -r '.status.ports[] | select(.name == "game") | .port')
NAME=$(printf '%s' "$GS" | jq -r '.object_meta.name // .objectMeta.name')
(
  until curl -sf "http://$ADMIN/ready" >/dev/null; do sleep 1; done
  curl -sf -X POST -H 'Content-Type: application/json' -d '{}' "$SDK/ready" >/dev/null
  while true; do
    curl -sf -X POST -H 'Content-Type: application/json' -d '{}' "$SDK/health" >/dev/null || true
    sleep 2
  done
) &
exec /usr/local/bin/shardline serve --listen 0.0.0.0:9000 --admin-listen "$ADMIN" \
  --node-id "$NAME" --region "${REGION:?set REGION}" --public-url "ws://$ADDR:$PORT" \
  --snapshot-dir /var/lib/shardline
