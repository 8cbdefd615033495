import { before, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { initBackend } from "../src/backend/index.js";
import { loadIdxDataset } from "../src/data/mnist.js";
import { readManifest, readMetrics, type ExportManifest } from "../src/checkpoint/index.js";
import { onnxFiles } from "../src/export/onnx.js";
import { loadCheckpoint } from "../src/train/checkpoint.js";
import { embedInvariant, errorRate, nearestCentroid } from "../src/train/embedding.js";
import { bestDirFor, train, type TrainOptions } from "../src/train/trainer.js";
import { measureZActivity } from "../src/train/z-activity.js";
import { sha256File } from "../src/util/fsx.js";
import { MNIST_DIR, tempDir } from "./helpers/paths.js";

const data = loadIdxDataset("mnist", { dataDir: MNIST_DIR, trainSize: 320, valSize: 100 });
const base: Omit<TrainOptions, "out" | "epochs" | "resume"> = {
  dv: 16,
  dz: 16,
  nMax: 7,
  batchSize: 32,
  batchDoubleEvery: 1,
  maxBatchSize: 64,
  contextShare: 4,
  learningRate: 1e-3,
  seed: 4,
  command: "test",
  backend: "wasm",
  quiet: true,
  log: () => {},
  // As `equivae train` does: the ONNX graphs from the weights in memory.
  deriveFiles: (snapshot) => onnxFiles(snapshot),
};

before(async () => {
  await initBackend("wasm");
});

test("a checkpoint records config, command, metrics and sha256 of every file; load reproduces embeddings exactly", async () => {
  const dir = join(tempDir(), "ck");
  const r = await train(data, { ...base, out: dir, epochs: 1, resume: false });
  const m = await readManifest(dir);
  assert.equal(m.format, "equivae-checkpoint");
  assert.equal(m.model.dv, 16);
  assert.equal(m.training.command, "test");
  assert.equal(m.training.epochsCompleted, 1);
  assert.equal(m.dataset.classNames.length, 10);
  assert.equal(m.metrics?.epoch, 1);
  for (const f of [
    "weights.bin",
    "weights.json",
    "optimizer.bin",
    "optimizer.json",
    "centroids.json",
    "metrics.jsonl",
    // Every checkpoint carries its ONNX graphs (exported before the swap).
    "invariant.onnx",
    "invariant_set.onnx",
    "equivariant.onnx",
    "decoder.onnx",
  ]) {
    assert.equal(m.files[f].sha256, await sha256File(join(dir, f)), f);
  }
  assert.equal(readFileSync(join(dir, "metrics.jsonl"), "utf8").trim().split("\n").length, 1);
  // The z activity of the epoch's model on the validation split, as eval measures it.
  assert.deepEqual(m.zActivity, measureZActivity(r.model, data.validation, { split: "validation" }));
  assert.equal(m.zActivity!.n, 100);

  const ck = await loadCheckpoint(dir);
  const a = embedInvariant(r.model, data.validation);
  const b = embedInvariant(ck.model, data.validation);
  assert.deepEqual(b, a);
  assert.deepEqual(ck.centroids, r.centroids);
  const numBefore = tf.memory().numTensors;
  ck.model.dispose();
  r.model.dispose();
  assert.ok(tf.memory().numTensors < numBefore);
});

test("--resume continues from the last completed epoch and matches an uninterrupted run exactly", async () => {
  const root = tempDir();
  const straight = join(root, "straight");
  const resumed = join(root, "resumed");
  (await train(data, { ...base, out: straight, epochs: 3, resume: false })).model.dispose();
  (await train(data, { ...base, out: resumed, epochs: 1, resume: false })).model.dispose();
  // The batch size doubles every epoch here, so the schedule must be resumed too.
  (
    await train(data, { ...base, out: resumed, epochs: 3, resume: true, command: "test --resume" })
  ).model.dispose();
  assert.ok(readFileSync(join(straight, "weights.bin")).equals(readFileSync(join(resumed, "weights.bin"))));
  assert.ok(
    readFileSync(join(straight, "optimizer.bin")).equals(readFileSync(join(resumed, "optimizer.bin"))),
  );
  const lines = await readMetrics(resumed);
  assert.deepEqual(
    lines.map((l) => [l.epoch, l.batchSize]),
    [
      [1, 32],
      [2, 64],
      [3, 64],
    ],
  );
  const m = await readManifest(resumed);
  assert.equal(m.training.command, "test");
  assert.deepEqual(m.training.resumedWith, ["test --resume"]);
  // <out>-best holds the epoch with the lowest validation error (first one on ties), resumed or not.
  const errs = lines.map((l) => l.valCentroidError as number);
  const bestEpoch = errs.indexOf(Math.min(...errs)) + 1;
  for (const dir of [straight, resumed]) {
    const best = await loadCheckpoint(bestDirFor(dir)); // verifies every file's sha256
    best.model.dispose();
    assert.equal(best.manifest.metrics?.epoch, bestEpoch);
  }
  assert.ok(
    readFileSync(join(bestDirFor(straight), "weights.bin")).equals(
      readFileSync(join(bestDirFor(resumed), "weights.bin")),
    ),
  );
  // Changing a fixed setting on resume is refused.
  await assert.rejects(
    train(data, { ...base, seed: 5, out: resumed, epochs: 4, resume: true }),
    /--resume: seed was 4 .* but is 5 now/,
  );
  // An existing directory without --resume is refused rather than overwritten.
  await assert.rejects(
    train(data, { ...base, out: resumed, epochs: 4, resume: false }),
    /already exists; pass --resume/,
  );
});

test("--ema-decay: the checkpoint serves the weight average, keeps the raw weights, and resumes exactly", async () => {
  const root = tempDir();
  const straight = join(root, "straight");
  const resumed = join(root, "resumed");
  const ema = { ...base, emaDecay: 0.9 };
  (await train(data, { ...ema, out: straight, epochs: 2, resume: false })).model.dispose();
  (await train(data, { ...ema, out: resumed, epochs: 1, resume: false })).model.dispose();
  (await train(data, { ...ema, out: resumed, epochs: 2, resume: true })).model.dispose();
  for (const f of ["weights.bin", "train-weights.bin", "optimizer.bin"]) {
    assert.ok(
      readFileSync(join(straight, f)).equals(readFileSync(join(resumed, f))),
      `${f} differs after --resume`,
    );
  }
  const average = readFileSync(join(straight, "weights.bin"));
  assert.ok(
    !average.equals(readFileSync(join(straight, "train-weights.bin"))),
    "the average is the raw weights",
  );
  // The average is what the checkpoint's ONNX graphs are made from, and what its centroids embed.
  const m = (await readManifest(straight)) as ExportManifest;
  assert.equal(m.onnx?.weightsSha256, m.files["weights.bin"].sha256);
  const ck = await loadCheckpoint(straight);
  const v = embedInvariant(ck.model, data.train);
  const y0 = Array.from(data.train.labels.keys()).filter((i) => data.train.labels[i] === 0);
  const mean0 = Array.from({ length: 16 }, (_, d) => y0.reduce((a, i) => a + v[i * 16 + d], 0) / y0.length);
  mean0.forEach((x, d) => assert.ok(Math.abs(x - ck.centroids.centroids[0][d]!) < 1e-4, `centroid 0[${d}]`));
  ck.model.dispose();
  const lines = await readMetrics(straight);
  for (const l of lines) {
    assert.equal(typeof l.valCentroidErrorRaw, "number", "the raw weights' error is logged");
    assert.equal(typeof l.trainCentroidErrorRaw, "number", "the raw weights' training error is logged");
  }
  // The logged training error is the checkpoint's own: its centroids, its training rows.
  const flat = Float32Array.from(ck.centroids.centroids.flat());
  assert.equal(lines.at(-1)!.trainCentroidError, errorRate(nearestCentroid(v, flat, 16), data.train.labels));
  // Switching the average off (or on) on resume is refused.
  await assert.rejects(
    train(data, { ...base, out: resumed, epochs: 3, resume: true }),
    /averages its weights \(--ema-decay 0.9\); resume it with the same --ema-decay/,
  );
  await assert.rejects(
    train(data, { ...ema, emaDecay: 0.99, out: resumed, epochs: 3, resume: true }),
    /--resume: emaDecay was 0.9 .* but is 0.99 now/,
  );
});

test("a corrupt or missing checkpoint file is a clear error naming the file; an interrupted swap is recovered", async () => {
  const root = tempDir();
  const dir = join(root, "ck");
  (await train(data, { ...base, out: dir, epochs: 1, resume: false })).model.dispose();
  const w = readFileSync(join(dir, "weights.bin"));
  w[100] ^= 0xff;
  writeFileSync(join(dir, "weights.bin"), w);
  await assert.rejects(
    loadCheckpoint(dir),
    /checkpoint file corrupt: .*weights\.bin does not match its sha256/,
  );
  w[100] ^= 0xff;
  writeFileSync(join(dir, "weights.bin"), w);
  // A crash between the two renames of a checkpoint swap leaves only ck.old-<pid>.
  renameSync(dir, `${dir}.old-12345`);
  const ck = await loadCheckpoint(dir);
  assert.ok(existsSync(join(dir, "manifest.json")));
  ck.model.dispose();
  await assert.rejects(loadCheckpoint(join(root, "nope")), /checkpoint directory not found/);
});

test("a semi-supervised run (--labels) resumes exactly, with q(y|x) and its labelled rows in the checkpoint", async () => {
  const small = loadIdxDataset("mnist", { dataDir: MNIST_DIR, trainSize: 160, valSize: 50 });
  const semi = { ...base, dv: 8, dz: 8, nMax: 3, labels: 40, deriveFiles: undefined };
  const root = tempDir();
  const straight = join(root, "straight");
  const resumed = join(root, "resumed");
  (await train(small, { ...semi, out: straight, epochs: 2, resume: false })).model.dispose();
  (await train(small, { ...semi, out: resumed, epochs: 1, resume: false })).model.dispose();
  (await train(small, { ...semi, out: resumed, epochs: 2, resume: true })).model.dispose();
  assert.ok(readFileSync(join(straight, "weights.bin")).equals(readFileSync(join(resumed, "weights.bin"))));
  assert.ok(
    readFileSync(join(straight, "optimizer.bin")).equals(readFileSync(join(resumed, "optimizer.bin"))),
  );
  const m = await readManifest(resumed);
  assert.equal(m.model.classifier, true);
  assert.ok(m.parameters.cls > 0);
  assert.ok(m.parameterCount < 1_000_000);
  assert.equal(m.training.options.labels, 40);
  const ck = await loadCheckpoint(resumed);
  assert.ok(ck.model.params.vars.has("cls/out/kernel"));
  const lab = ck.labelled!;
  assert.equal(lab.rows.length, 40);
  assert.equal(lab.perClass, 4);
  assert.deepEqual(ck.centroids.counts, new Array(10).fill(4), "centroids come from the labelled rows only");
  assert.ok(m.files["labelled.json"]);
  ck.model.dispose();
  const lines = await readMetrics(resumed);
  for (const l of lines)
    for (const k of ["valCentroidError", "valClassifierError", "unlabelledU", "classificationLoss"] as const)
      assert.ok(Number.isFinite(l[k]), k);
  await assert.rejects(
    train(small, { ...semi, labels: undefined, out: resumed, epochs: 3, resume: true }),
    /semi-supervised run \(--labels 40\); resume it with the same --labels/,
  );
  await assert.rejects(
    train(small, { ...semi, labels: 60, out: resumed, epochs: 3, resume: true }),
    /--resume: labels was 40 .* but is 60 now/,
  );
});
