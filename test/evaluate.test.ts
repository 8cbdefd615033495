/**
 * eval's two trained classifiers (neural on v, benchmark) draw their initial weights, dropout masks
 * and shuffling from a seeded stream, so the numbers eval writes repeat; another seed draws
 * differently. An untrained model on 300 real MNIST images keeps this fast. And `eval --record`'s
 * manifest update fails cleanly.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { initBackend } from "../src/backend/index.js";
import { loadIdxDataset } from "../src/data/mnist.js";
import { defaultConfig } from "../src/model/config.js";
import { EquiVAE } from "../src/model/equivae.js";
import { centroidsFrom, embedInvariant } from "../src/train/embedding.js";
import { evaluate, type EvalOptions } from "../src/train/evaluate.js";
import { readManifest, recordEvaluation } from "../src/checkpoint/index.js";
import { UserError } from "../src/util/errors.js";
import { MNIST_DIR, ROOT, tempDir } from "./helpers/paths.js";

before(async () => {
  await initBackend("wasm");
});

test("eval's classifiers are seeded: the same seed repeats every number, Math.random is restored", async () => {
  const data = loadIdxDataset("mnist", { dataDir: MNIST_DIR, trainSize: 300, valSize: 200 });
  const cfg = defaultConfig({ height: 28, width: 28, channels: 1, numClasses: 10 });
  const model = new EquiVAE(cfg, 3);
  const c = centroidsFrom(embedInvariant(model, data.train), data.train.labels, 10, cfg.dv);
  const centroids = {
    classNames: data.classNames,
    dv: cfg.dv,
    centroids: Array.from({ length: 10 }, (_, y) => Array.from(c.subarray(y * cfg.dv, (y + 1) * cfg.dv))),
    counts: new Array<number>(10).fill(30),
  };
  const random = Math.random;
  const run = (seed: number) => {
    const o: EvalOptions = { vClassifierEpochs: 3, benchmarkEpochs: 1, seed, log: () => {} };
    return evaluate(model, centroids, data.train, data.validation, "validation", o);
  };
  const a = await run(5);
  const b = await run(5);
  const other = await run(6);
  assert.equal(Math.random, random, "Math.random was not restored");
  assert.equal(a.details.seed, 5);
  assert.equal(a.vClassifierError, b.vClassifierError);
  assert.equal(a.benchmarkError, b.benchmarkError);
  assert.equal(a.centroidError, b.centroidError);
  // 200 images: two independently initialised classifiers agree on both errors only by chance.
  assert.ok(
    a.vClassifierError !== other.vClassifierError || a.benchmarkError !== other.benchmarkError,
    "seed 6 drew exactly as seed 5",
  );
  model.dispose();
});

test("eval --record's manifest update: a failed write is one clear error and leaves the manifest as it was", async () => {
  const dir = join(tempDir(), "record");
  cpSync(join(ROOT, "models", "mnist"), dir, { recursive: true });
  const before = readFileSync(join(dir, "manifest.json"), "utf8");
  // The atomic write's temporary file cannot be created: a directory is in its place.
  mkdirSync(join(dir, `.manifest.json.tmp-${process.pid}`));
  const evaluation = {
    command: "equivae eval x --record",
    split: "test",
    n: 1,
    centroidError: 0,
    vClassifierError: null,
    benchmarkError: null,
    posteriorError: null,
    backend: "wasm",
    time: new Date().toISOString(),
  };
  await assert.rejects(recordEvaluation(dir, evaluation), (e: Error) => {
    assert.ok(e instanceof UserError);
    assert.match(e.message, /manifest\.json: cannot update .*the manifest was left as it was/);
    return true;
  });
  assert.equal(readFileSync(join(dir, "manifest.json"), "utf8"), before);
  rmSync(join(dir, `.manifest.json.tmp-${process.pid}`), { recursive: true });
  await recordEvaluation(dir, evaluation);
  assert.deepEqual((await readManifest(dir)).evaluation, evaluation);
});
