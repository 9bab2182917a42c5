#!/bin/sh
# Waits for the Temporal frontend and creates the namespace codeswarm uses.
set -eu
ns=${DEFAULT_NAMESPACE:-default}
addr=${TEMPORAL_ADDRESS:-temporal:7233}
i=0
until temporal operator cluster health --address "$addr" >/dev/null 2>&1; do
  i=$((i + 1)); [ "$i" -ge 60 ] && { echo "temporal at $addr not healthy"; exit 1; }
  sleep 2
done
temporal operator namespace describe -n "$ns" --address "$addr" >/dev/null 2>&1 ||
  temporal operator namespace create -n "$ns" --address "$addr"
echo "namespace $ns ready"
