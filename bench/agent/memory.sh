#!/usr/bin/env bash
# Memory of the real node agent: idle RSS, and the PSS of the processes of N built-in
# nginx pods (each pod = its container's shim + the nginx program, both the kubesvc
# binary). Runs a server and an agent sealed in fresh namespaces:
#
#   go build -o /tmp/kubesvc ./cmd/kubesvc
#   ISOLATED_UPLINK=198.51.100.10/24 ../shared/tools/isolated bench/agent/memory.sh /tmp/kubesvc 10
#
# Must run inside namespaces of its own (it refuses otherwise): the agent programs the
# network.
set -euo pipefail
bin=${1:?usage: memory.sh KUBESVC-BINARY [PODS]}
pods=${2:-10}
if ip -o link | grep -q kubesvc0 || [ "$(ip -o link | wc -l)" -gt 3 ]; then
  echo "memory.sh: run me under ../shared/tools/isolated (fresh network namespace)" >&2
  exit 2
fi
d=$(mktemp -d)
"$bin" server --data-dir "$d" --bind-address 127.0.0.1 > "$d/server.log" 2>&1 &
for _ in $(seq 1 200); do
  [ -f "$d/admin.kubeconfig" ] && curl -sk https://127.0.0.1:6443/readyz >/dev/null 2>&1 && break
  sleep 0.1
done
export KUBECONFIG=$d/admin.kubeconfig
"$bin" agent --kubeconfig "$KUBECONFIG" --node-name node-a --root-dir "$d/agent" > "$d/agent.log" 2>&1 &
agent=$!
kubectl wait --for=condition=Ready node/node-a --timeout=30s >/dev/null
sleep 15
echo "agent idle: $(awk '/^VmRSS/{print $2, $3}' /proc/$agent/status) RSS"
kubectl create deployment nginx --image=nginx --replicas="$pods" >/dev/null
kubectl wait --for=condition=Available deploy/nginx --timeout=120s >/dev/null
sleep 5
echo "agent with $pods pods: $(awk '/^VmRSS/{print $2, $3}' /proc/$agent/status) RSS"
total=0 n=0
for p in $(pgrep -f "builtin-image nginx") $(pgrep -f "containerinit shim"); do
  pss=$(awk '/^Pss:/{print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
  total=$((total + ${pss:-0})) n=$((n + 1))
done
echo "pod processes: $n, PSS $((total / 1024)) MiB in all, $((total / 1024 / pods)) MiB per pod"
