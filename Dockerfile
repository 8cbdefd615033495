# syntax=docker/dockerfile:1
# The EquiVAE embedding service with the shipped MNIST model.
#   docker build -t equivae-serve .
#   docker run --rm -p 8080:8080 equivae-serve          # then: curl localhost:8080/readyz

# ---- build: all dependencies, compile TypeScript
FROM node:20-bookworm-slim AS build
WORKDIR /app
# .npmrc: onnxruntime-node-install=skip (its CPU binaries ship in the package; nothing is downloaded).
COPY package.json package-lock.json .npmrc ./
# --ignore-scripts: the root "prepare" script would run tsc before the sources are here.
RUN npm ci --ignore-scripts
COPY tsconfig.json openapi.yaml ./
COPY src ./src
COPY scripts ./scripts
COPY test ./test
RUN npx tsc -p tsconfig.json

# ---- serving-deps: production dependencies pruned to what serving needs (scripts/prune-serving.mjs:
# no TF.js, no dataset package, no ONNX writer; onnxruntime-node's binaries for this platform only).
FROM node:20-bookworm-slim AS serving-deps
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
COPY scripts/prune-serving.mjs ./scripts/
RUN npm ci --omit=dev --ignore-scripts && node scripts/prune-serving.mjs .

# ---- runtime: the pruned dependencies, compiled code, the spec, the demo page and the default
# model (serve and embed only: train, eval and export need the full install)
FROM node:20-bookworm-slim AS runtime
# ORT_DISABLE_TELEMETRY: ONNX Runtime would otherwise write a device id under $HOME/.cache (and print
# a warning where it cannot, e.g. on a read-only root file system).
ENV NODE_ENV=production PORT=8080 ORT_DISABLE_TELEMETRY=1
WORKDIR /app
COPY package.json ./
COPY --from=serving-deps /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY openapi.yaml ./
# The demo page at / (static files read at start; tsc compiles only .ts).
COPY src/serve/demo ./src/serve/demo
COPY models/mnist ./models/mnist
USER node
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Exec form: node is PID 1 and gets SIGTERM itself (the server drains, then exits 0).
CMD ["node", "--max-semi-space-size=64", "dist/src/cli.js", "serve"]
