#!/usr/bin/env bash
# The prod overlay's shape in miniature, on one machine: a Ray head with no GPU
# and a worker node declaring 2 logical GPUs (no GPU needed: Ray schedules on the
# declared count). The Serve graph from deployments/local.yaml is deployed with
# the Ranker asking for num_gpus 0.5, so its replicas can only land on the worker;
# the script answers a search and shows where every replica runs.
#
#   bash scripts/multinode_demo.sh          # about 2-3 minutes on 2 cores
#
# Both nodes run `ray start --block` in the background and are stopped by their
# own process ids at exit: `ray stop` would kill every Ray process on the
# machine, other people's included.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
RAY=.venv/bin/ray
GCS_PORT=${GCS_PORT:-6390}
DASH_PORT=${DASH_PORT:-8266}
HTTP_PORT=${HTTP_PORT:-8011}
CATALOG_SIZE=${CATALOG_SIZE:-2000}

# Short path: Ray's unix sockets live under the temp dir and must stay under 108 bytes.
work=$(mktemp -d /tmp/srmn.XXXX)
export SHOPRAY_HOME=$work/home HF_HUB_OFFLINE=1 RAY_DEDUP_LOGS=0
unset QDRANT_URL RAY_ADDRESS   # the embedded index under $SHOPRAY_HOME, and a fresh cluster
# Token authentication, with a token of this run's own: `ray start` turns auth on
# by itself when ~/.ray/auth_token exists, and then every client needs the token.
export RAY_AUTH_MODE=token
RAY_AUTH_TOKEN=$($PY -c 'import secrets; print(secrets.token_hex(32))')
export RAY_AUTH_TOKEN
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait "${pids[@]}" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

wait_for_nodes() {  # wait_for_nodes N: until the cluster has N alive nodes
    for _ in $(seq 1 90); do
        n=$($PY -c "import ray; ray.init(address='127.0.0.1:$GCS_PORT', logging_level='ERROR'); print(sum(x['Alive'] for x in ray.nodes()))" 2>/dev/null || echo 0)
        [[ "$n" == "$1" ]] && return 0
        sleep 2
    done
    echo "cluster did not reach $1 nodes; logs in $work/*.log" >&2
    tail -20 "$work"/*.log >&2
    return 1
}

echo "== 1. index a ${CATALOG_SIZE}-product demo catalog into $SHOPRAY_HOME"
$PY -m shopray.catalog.demo "$work/catalog.jsonl" --n "$CATALOG_SIZE"
.venv/bin/shopray index --catalog "$work/catalog.jsonl" --name demo 2>&1 | tail -1

echo "== 2. start a head (2 CPUs, no GPU) and a worker (2 CPUs, 2 logical GPUs)"
# No --node-ip-address: Ray maps 127.0.0.1 in every address to the host's own
# IP, so both nodes and the driver must agree on that IP, which is the default.
$RAY start --head --block --port="$GCS_PORT" \
    --num-cpus=2 --num-gpus=0 --resources='{"head": 1}' --temp-dir="$work/ray" \
    --include-dashboard=true --dashboard-host=127.0.0.1 --dashboard-port="$DASH_PORT" \
    --disable-usage-stats >"$work/head.log" 2>&1 &
pids+=($!)
wait_for_nodes 1
# A second raylet on the same host needs its own agent and manager ports.
$RAY start --block --address="127.0.0.1:$GCS_PORT" \
    --num-cpus=2 --num-gpus=2 --resources='{"gpu_worker": 1}' \
    --node-manager-port=47101 --object-manager-port=47102 --runtime-env-agent-port=47103 \
    --dashboard-agent-grpc-port=47104 --dashboard-agent-listen-port=47105 --metrics-export-port=47106 \
    --min-worker-port=47200 --max-worker-port=47399 \
    --disable-usage-stats >"$work/worker.log" 2>&1 &
pids+=($!)
wait_for_nodes 2

echo "== 3. deploy deployments/local.yaml with the Ranker at num_gpus 0.5 (2 replicas)"
$PY - "$GCS_PORT" "$HTTP_PORT" <<'EOF'
import sys, time
import ray, yaml
from ray import serve
from ray.serve.schema import ServeDeploySchema

gcs_port, http_port = sys.argv[1], int(sys.argv[2])
config = yaml.safe_load(open("deployments/local.yaml"))
config["proxy_location"] = "EveryNode"
config["http_options"] = {**config.get("http_options", {}), "host": "127.0.0.1", "port": http_port}
app = config["applications"][0]
app["args"].pop("catalog", None)  # indexed in step 1
for dep in app["deployments"]:
    if dep["name"] == "Ranker":
        dep.pop("autoscaling_config", None)  # two fixed replicas: one GPU's worth
        dep["num_replicas"] = 2
        dep["ray_actor_options"] = {"num_cpus": 0.25, "num_gpus": 0.5}
print(yaml.safe_dump({"Ranker": next(d for d in app["deployments"] if d["name"] == "Ranker")}, sort_keys=False), end="")
ray.init(address=f"127.0.0.1:{gcs_port}", logging_level="ERROR")
serve.start(http_options=config["http_options"])
serve.context._get_global_client().deploy_apps(ServeDeploySchema.model_validate(config))
deadline = time.monotonic() + 600
while time.monotonic() < deadline:
    status = serve.status().applications.get(app["name"])
    if status and status.status in ("RUNNING", "DEPLOY_FAILED"):
        break
    time.sleep(2)
print(f"application {app['name']}: {status.status if status else 'missing'}")
sys.exit(0 if status and status.status == "RUNNING" else 1)
EOF

echo "== 4. a search through the HTTP proxy"
.venv/bin/shopray search "red running shoes under 80" --k 5 --url "http://127.0.0.1:$HTTP_PORT"

echo "== 5. serve status"
.venv/bin/serve status -a "http://127.0.0.1:$DASH_PORT"

echo "== 6. ray list nodes / ray list actors (ALIVE)"
$RAY list nodes --address "http://127.0.0.1:$DASH_PORT" --limit 10
$RAY list actors --address "http://127.0.0.1:$DASH_PORT" --filter "state=ALIVE" --limit 50

echo "== 7. placement: which node each Serve replica runs on"
$PY - "$GCS_PORT" <<'EOF'
import sys
import ray
from ray.util.state import list_actors

ray.init(address=f"127.0.0.1:{sys.argv[1]}", logging_level="ERROR")
nodes = {n["NodeID"]: n for n in ray.nodes() if n["Alive"]}
label = {nid: ("head (no GPU)" if "head" in n["Resources"] else f"worker ({n['Resources'].get('GPU', 0):g} logical GPUs)") for nid, n in nodes.items()}
rows = sorted((a.class_name, a.name or "", a.node_id) for a in list_actors(filters=[("state", "=", "ALIVE")], limit=100))
for cls, name, node in rows:
    print(f"{cls:<34} {name:<52} {node[:12]}  {label.get(node, '?')}")
ranker_nodes = {label[n] for c, name, n in rows if "Ranker" in name}
print(f"Ranker replicas on: {', '.join(sorted(ranker_nodes))}")
sys.exit(0 if ranker_nodes and all(l.startswith("worker") for l in ranker_nodes) else 1)
EOF
echo "== done; stopping both nodes"
