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

# ---- runtime: production dependencies, compiled code, the spec and the default model
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production PORT=8080
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist/src ./dist/src
COPY openapi.yaml ./
COPY models/mnist ./models/mnist
USER node
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Exec form: node is PID 1 and gets SIGTERM itself (the server drains, then exits 0).
CMD ["node", "--max-semi-space-size=64", "dist/src/cli.js", "serve"]
