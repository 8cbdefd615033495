// The pooled ONNX engine (src/inference/workers): the same numbers as ONNX Runtime on this thread,
// work on worker threads, decoding errors that keep their kind across the thread boundary, and a
// checkpoint that cannot load refused with one clear error.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { batchPixels, range } from "../src/data/dataset.js";
import { loadIdxDataset } from "../src/data/mnist.js";
import { encodePng, ImagingError } from "../src/imaging/index.js";
import { loadEngine, type Engine } from "../src/inference/index.js";
import { PooledEngine } from "../src/inference/workers/pool.js";
import { DEFAULT_MODEL_DIR } from "../src/serve/config.js";
import { MNIST_DIR, tempDir } from "./helpers/paths.js";

const data = loadIdxDataset("mnist", { dataDir: MNIST_DIR, trainSize: 10, valSize: 10, withTest: true });
const N = 20;
const X = batchPixels(data.test!, range(0, N));
const PX = 784;
let local: Engine;
let pooled: PooledEngine;

before(async () => {
  local = await loadEngine(DEFAULT_MODEL_DIR, { engine: "onnx", threads: 1 });
  pooled = await PooledEngine.load(DEFAULT_MODEL_DIR, { workers: 2 });
});

after(async () => {
  await local?.dispose();
  await pooled?.dispose();
});

const maxDiff = (a: Float32Array, b: Float32Array) => {
  assert.equal(a.length, b.length);
  return a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
};

test("every operation gives ONNX Runtime's numbers from two worker threads", async () => {
  assert.equal(pooled.workers, 2);
  const v = await local.embedInvariant(X, N);
  const [pv1, pv2] = await Promise.all([pooled.embedInvariant(X, N), pooled.embedInvariant(X, N)]);
  assert.ok(maxDiff(v, pv1) < 1e-6 && maxDiff(v, pv2) < 1e-6);
  const e = await local.encodeEquivariant(X, N, v);
  const pe = await pooled.encodeEquivariant(X, N, v);
  assert.ok(maxDiff(e.mu, pe.mu) < 1e-6 && maxDiff(e.logvar, pe.logvar) < 1e-6);
  const d = await local.decode(v, e.mu, N);
  assert.ok(maxDiff(d, await pooled.decode(v, e.mu, N)) < 1e-6);
  const s = await local.embedSet(X, [5, 15]);
  assert.ok(maxDiff(s, await pooled.embedSet(X, [5, 15])) < 1e-6);
  const top = await pooled.classify(X, N, 1);
  const want = await local.classify(X, N, 1);
  assert.deepEqual(
    top.map((r) => r[0].label),
    want.map((r) => r[0].label),
  );
  // Input checks still run here, before anything is sent to a worker.
  await assert.rejects(pooled.embedInvariant(X.subarray(0, PX + 1), 1), /expected 1 images/);
});

test("decoding runs on the workers; a bad image comes back as an ImagingError of its kind", async () => {
  const model = { height: 28, width: 28, channels: 1 };
  const png = encodePng(X.subarray(0, PX), 28, 28, 1);
  const r = await pooled.decoder.decode({
    images: [{ bytes: png, what: "image[0]" }],
    model,
    options: {},
    maxPixels: 4_000_000,
  });
  assert.equal(r.pre[0].source, "png");
  assert.ok(maxDiff(r.x, X.subarray(0, PX)) <= 0.5 / 255 + 1e-6);
  const truncated = png.subarray(0, png.length - 30);
  await assert.rejects(
    pooled.decoder.decode({
      images: [{ bytes: truncated, what: "image[0]" }],
      model,
      options: {},
      maxPixels: 4e6,
    }),
    (e: unknown) => e instanceof ImagingError && e.kind === "invalid-image" && /image\[0\]/.test(e.message),
  );
});

test("a checkpoint whose graphs cannot load is refused with one clear error, and no worker is left", async () => {
  const dir = tempDir("pool-broken");
  cpSync(DEFAULT_MODEL_DIR, dir, { recursive: true });
  // A graph ONNX Runtime cannot parse, with its sha256 updated so that only the workers find out.
  writeFileSync(join(dir, "invariant.onnx"), "not onnx");
  const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
  manifest.files["invariant.onnx"].sha256 = createHash("sha256").update("not onnx").digest("hex");
  writeFileSync(join(dir, "manifest.json"), JSON.stringify(manifest));
  await assert.rejects(
    PooledEngine.load(dir, { workers: 1 }),
    /invariant\.onnx: ONNX Runtime cannot load this model/,
  );
  await assert.rejects(
    PooledEngine.load(DEFAULT_MODEL_DIR, { workers: 0 }),
    /workers must be a positive integer/,
  );
});
