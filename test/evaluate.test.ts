/**
 * eval's two trained classifiers (neural on v, benchmark) draw their initial weights, dropout masks
 * and shuffling from a seeded stream, so the numbers eval writes repeat; another seed draws
 * differently. An untrained model on 300 real MNIST images keeps this fast. And `eval --record`'s
 * manifest update fails cleanly. The z activity (mean KL per z dimension) against a hand
 * computation, and `eval --record` writing it without touching the checkpoint's files. `eval --split
 * train` against the stored centroids.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { cpSync, mkdirSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/backend/index.js";
import { gaussianKl } from "../src/model/objective.js";
import { ACTIVE_KL_NATS, activeDims, klPerDim, measureZActivity } from "../src/train/z-activity.js";
import { runCli } from "./helpers/cli.js";
import { loadIdxDataset } from "../src/data/mnist.js";
import { defaultConfig } from "../src/model/config.js";
import { EquiVAE } from "../src/model/equivae.js";
import { centroidsFrom, embedInvariant, errorRate, nearestCentroid } from "../src/train/embedding.js";
import { loadCheckpoint } from "../src/train/checkpoint.js";
import { drawSets, setCentroidErrors } from "../src/train/set-error.js";
import { rowsByClass, subset } from "../src/data/dataset.js";
import { Rng } from "../src/util/rng.js";
import { evaluate, type EvalOptions } from "../src/train/evaluate.js";
import { readManifest, recordEvaluation } from "../src/checkpoint/index.js";
import { InputError } from "../src/util/errors.js";
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
    assert.ok(e instanceof InputError);
    assert.match(e.message, /manifest\.json: cannot update .*the manifest was left as it was/);
    return true;
  });
  assert.equal(readFileSync(join(dir, "manifest.json"), "utf8"), before);
  rmSync(join(dir, `.manifest.json.tmp-${process.pid}`), { recursive: true });
  await recordEvaluation(dir, evaluation);
  assert.deepEqual((await readManifest(dir)).evaluation, evaluation);
});

test("KL per z dimension: 0.5 * (mu^2 + exp(logvar) - 1 - logvar) averaged over rows, by hand", () => {
  // Two rows, dz = 2. Row 0: (mu, logvar) = (0, 0) and (1, ln 2); row 1: (2, -1) and (-1, 0).
  const mu = [0, 1, 2, -1];
  const logvar = [0, Math.log(2), -1, 0];
  const kl = klPerDim(mu, logvar, 2);
  // dim 0: (0 + 0.5 * (4 + e^-1 - 1 + 1)) / 2; dim 1: (0.5 * (1 + 2 - 1 - ln 2) + 0.5 * (1 + 1 - 1)) / 2
  const want = [(0 + 0.5 * (4 + Math.exp(-1))) / 2, (0.5 * (2 - Math.log(2)) + 0.5) / 2];
  assert.ok(Math.abs(kl[0] - 1.0919699) < 1e-6 && Math.abs(kl[0] - want[0]) < 1e-12, `${kl[0]}`);
  assert.ok(Math.abs(kl[1] - 0.5767132) < 1e-6 && Math.abs(kl[1] - want[1]) < 1e-12, `${kl[1]}`);
  // The prior itself has KL 0.
  assert.deepEqual(Array.from(klPerDim([0, 0, 0], [0, 0, 0], 3)), [0, 0, 0]);
  // Active: above the threshold, largest KL first; ties by index.
  assert.deepEqual(activeDims(kl, ACTIVE_KL_NATS), [0, 1]);
  assert.deepEqual(activeDims(kl, 0.6), [0]);
  assert.deepEqual(activeDims([0.001, 3, 0.5, 3, 0.02], 0.01), [1, 3, 2, 4]);
  assert.equal(ACTIVE_KL_NATS, 0.01);
});

test("measureZActivity on a tiny model: q(z | x, v(x))'s KL per dimension; the dims sum to the objective's KL", () => {
  const cfg = defaultConfig({
    height: 12,
    width: 12,
    channels: 1,
    numClasses: 3,
    dv: 4,
    dz: 3,
    filters: [4, 4, 4, 4, 4],
  });
  const model = new EquiVAE(cfg, 7);
  const n = 10;
  const pixels = new Uint8Array(n * 144);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 37 + 11) % 256;
  const set = {
    pixels,
    labels: Int32Array.from({ length: n }, (_, i) => i % 3),
    n,
    height: 12,
    width: 12,
    channels: 1,
  };
  const za = measureZActivity(model, set, { split: "validation", batch: 4 });
  assert.equal(za.split, "validation");
  assert.equal(za.n, n);
  assert.equal(za.v, "image");
  assert.equal(za.thresholdNats, ACTIVE_KL_NATS);
  // By hand, from the model's own mu and logvar with v = v(x).
  const [mu, logvar, klRow] = tf.tidy(() => {
    const x = tf.tensor4d(
      Float32Array.from(pixels, (p) => p / 255),
      [n, 12, 12, 1],
    );
    const q = model.encode(x, model.invariant(x));
    return [q.mu.arraySync(), q.logvar.arraySync(), gaussianKl(q.mu, q.logvar).arraySync()];
  }) as [number[][], number[][], number[]];
  const want = Array.from({ length: cfg.dz }, (_, d) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += 0.5 * (mu[i][d] ** 2 + Math.exp(logvar[i][d]) - 1 - logvar[i][d]);
    return s / n;
  });
  za.klPerDim.forEach((k, d) =>
    assert.ok(Math.abs(k - want[d]) <= 1e-5 * Math.max(1, want[d]), `dim ${d}: ${k} vs ${want[d]}`),
  );
  // Summed over the dimensions: the mean of the KL term the objective uses.
  const total = klRow.reduce((a, b) => a + b, 0) / n;
  const sum = za.klPerDim.reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(sum - total) <= 1e-4 * Math.max(1, total), `${sum} vs ${total}`);
  assert.deepEqual(za.activeDims, activeDims(za.klPerDim, ACTIVE_KL_NATS));
  // The batch size does not matter.
  assert.deepEqual(measureZActivity(model, set, { split: "validation" }).klPerDim, za.klPerDim);
  model.dispose();
});

test("eval --record writes zActivity (the whole validation split) and leaves every other file's sha256 as it was", async () => {
  const dir = join(tempDir(), "mnist");
  cpSync(join(ROOT, "models", "mnist"), dir, { recursive: true });
  const sha = (f: string) =>
    createHash("sha256")
      .update(readFileSync(join(dir, f)))
      .digest("hex");
  const files = readdirSync(dir).filter((f) => f !== "manifest.json");
  const before = Object.fromEntries(files.map((f) => [f, sha(f)]));
  const old = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
  const out = join(tempDir(), "eval.json");
  const r = runCli([
    "eval",
    dir,
    "--split",
    "test",
    "--limit",
    "50",
    "--train-size",
    "100",
    "--v-epochs",
    "0",
    "--benchmark-epochs",
    "0",
    "--data-dir",
    MNIST_DIR,
    "--backend",
    "wasm",
    "--out",
    out,
    "--record",
  ]);
  assert.equal(r.code, 0, r.stderr);
  // The shipped model's recorded activity names the same dimensions, largest first.
  const recorded = old.zActivity.activeDims as number[];
  assert.match(
    r.stdout,
    new RegExp(
      `active z dimensions \\(mean KL > 0\\.01 nats on validation, 5000 images\\): ` +
        `${recorded.length} of 16: ${recorded[0]} \\(`,
    ),
  );
  assert.deepEqual(
    readdirSync(dir)
      .filter((f) => f !== "manifest.json")
      .sort(),
    files.sort(),
  );
  for (const f of files) assert.equal(sha(f), before[f], `${f} changed`);
  const m = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
  // Only evaluation and zActivity changed; the listed files are as they were (and still verify).
  assert.deepEqual(
    { ...m, evaluation: undefined, zActivity: undefined },
    { ...old, evaluation: undefined, zActivity: undefined },
  );
  await readManifest(dir);
  assert.equal(m.evaluation.n, 50);
  const za = m.zActivity;
  assert.equal(za.split, "validation");
  assert.equal(za.n, 5000, "the whole validation split, whatever --split and --limit say");
  assert.equal(za.klPerDim.length, 16);
  assert.equal(za.thresholdNats, 0.01);
  assert.deepEqual(za.activeDims, activeDims(za.klPerDim, 0.01));
  assert.deepEqual(JSON.parse(readFileSync(out, "utf8")).zActivity, za);
  // The shipped model's recorded activity (tensorflow backend) agrees with this wasm measurement.
  const shipped = JSON.parse(readFileSync(join(ROOT, "models", "mnist", "manifest.json"), "utf8")).zActivity;
  assert.deepEqual(za.activeDims, shipped.activeDims);
  za.klPerDim.forEach((k: number, d: number) =>
    assert.ok(
      Math.abs(k - shipped.klPerDim[d]) <= 1e-3 * Math.max(1, k) + 1e-5,
      `dim ${d}: ${k} vs ${shipped.klPerDim[d]}`,
    ),
  );
});

test("eval --split train measures the rows the centroids come from, and refuses --record", async () => {
  const dir = join(ROOT, "models", "mnist");
  const out = join(tempDir(), "eval-train.json");
  const common = ["--train-size", "2000", "--v-epochs", "0", "--benchmark-epochs", "0", "--backend", "wasm"];
  const r = runCli(["eval", dir, "--split", "train", "--data-dir", MNIST_DIR, "--out", out, ...common]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /\| train error \(2000 images\) \| value \|/);
  const e = JSON.parse(readFileSync(out, "utf8"));
  assert.equal(e.split, "train");
  assert.equal(e.n, 2000);
  // The first 2000 rows of the training split (after the 5,000 validation rows), under the stored centroids.
  const data = loadIdxDataset("mnist", { dataDir: MNIST_DIR, trainSize: 2000, valSize: 0 });
  const ck = await loadCheckpoint(dir);
  const flat = Float32Array.from(ck.centroids.centroids.flat());
  const want = errorRate(nearestCentroid(embedInvariant(ck.model, data.train), flat, 16), data.train.labels);
  ck.model.dispose();
  assert.equal(e.centroidError, want);
  assert.ok(want < 0.02, `training error ${want}`);

  const before = readFileSync(join(dir, "manifest.json"), "utf8");
  const refused = runCli(["eval", dir, "--split", "train", "--record", ...common]);
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /--record keeps test or validation results/);
  assert.doesNotMatch(refused.stderr, /\n\s+at /, "no stack trace");
  assert.equal(readFileSync(join(dir, "manifest.json"), "utf8"), before, "the manifest is untouched");
});

test("set embeddings: each row plus n - 1 distinct others of its class; n = 1 is the centroid error, larger sets err less", async () => {
  const data = loadIdxDataset("mnist", { dataDir: MNIST_DIR, withTest: true, trainSize: 10, valSize: 0 });
  const test2k = subset(
    data.test!,
    Array.from({ length: 2000 }, (_, i) => i),
  );
  const by = rowsByClass(test2k.labels, 10);
  const members = drawSets(test2k, by, 3, new Rng(5));
  assert.equal(members.length, 3 * test2k.n);
  for (let i = 0; i < test2k.n; i++) {
    const s = members.slice(3 * i, 3 * i + 3);
    assert.equal(s[0], i, "the row anchors its own set");
    assert.equal(new Set(s).size, 3, `set ${i} repeats a row: ${s}`);
    for (const r of s) assert.equal(test2k.labels[r], test2k.labels[i], `set ${i} mixes classes`);
  }

  const ck = await loadCheckpoint(join(ROOT, "models", "mnist"));
  const c = Float32Array.from(ck.centroids.centroids.flat());
  const plain = errorRate(nearestCentroid(embedInvariant(ck.model, test2k), c, 16), test2k.labels);
  const e = setCentroidErrors(ck.model, c, test2k, [1, 4], 1);
  assert.deepEqual(Object.keys(e), ["1", "4"]);
  assert.equal(e["1"], plain);
  assert.ok(plain > 0 && e["4"] < plain, `n = 4: ${e["4"]}, n = 1: ${plain}`);
  assert.deepEqual(setCentroidErrors(ck.model, c, test2k, [4], 1), { "4": e["4"] }, "seeded draws repeat");
  // A class smaller than the set is refused by name.
  const tiny = subset(
    data.test!,
    Array.from({ length: 12 }, (_, i) => i),
  );
  assert.throws(
    () => setCentroidErrors(ck.model, c, tiny, [5], 1),
    /--set-sizes 5: a class .* has only 1 image$/,
  );
  ck.model.dispose();

  const bad = runCli(["eval", join(ROOT, "models", "mnist"), "--set-sizes", "2,0"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /each entry of --set-sizes must be an integer from 1 to 64 \(got '0'\)/);
});
