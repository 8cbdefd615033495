import { before, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/backend/index.js";
import { defaultConfig } from "../src/model/config.js";
import { EquiVAE } from "../src/model/equivae.js";
import { classTerms, labelledTerms, semiSupervisedObjective } from "../src/model/objective.js";
import { ComplementarySampler } from "../src/data/sampler.js";
import { classPrior, hideLabels, makeSemiStep, selectLabelled } from "../src/train/semi.js";
import { Rng } from "../src/util/rng.js";

before(async () => {
  await initBackend("cpu");
});

test("U(x) and J of Eq. 5-7 match a hand computation (K = 2, exact sum over classes)", () => {
  // Labelled: two examples with L = 10 and 20, q(true class | x) = 0.8 and 0.5.
  // Unlabelled: two examples with q(.|x) = [0.25, 0.75] and [0.9, 0.1], L(x, .) = [100, 120] and [50, 80].
  // p(y) = [0.2, 0.8].
  const r = tf.tidy(() => {
    const out = semiSupervisedObjective({
      labelledL: tf.tensor1d([10, 20]),
      labelledLogQ: tf.tensor1d([Math.log(0.8), Math.log(0.5)]),
      unlabelledL: tf.tensor2d([
        [100, 120],
        [50, 80],
      ]),
      unlabelledLogQ: tf.log(
        tf.tensor2d([
          [0.25, 0.75],
          [0.9, 0.1],
        ]),
      ),
      logPrior: tf.log(tf.tensor1d([0.2, 0.8])),
    });
    return {
      loss: out.loss.dataSync()[0],
      u: Array.from(out.u.dataSync()),
      sumL: out.sumL.dataSync()[0],
      sumU: out.sumU.dataSync()[0],
      sumXent: out.sumXent.dataSync()[0],
    };
  });
  // U(x) = -( sum_y q (-L + log p) + H(q) ), by hand:
  //   x1: -(0.25 (-100 + ln 0.2) + 0.75 (-120 + ln 0.8) + H), H = -(0.25 ln 0.25 + 0.75 ln 0.75)
  //     = 25 + 90 - 0.25 ln 0.2 - 0.75 ln 0.8 + 0.25 ln 0.25 + 0.75 ln 0.75
  //     = 115 + 0.402359 + 0.167358 - 0.346574 - 0.215762 = 115.007381
  //   x2: 45 + 8 - 0.9 ln 0.2 - 0.1 ln 0.8 + 0.9 ln 0.9 + 0.1 ln 0.1
  //     = 53 + 1.448482 + 0.022314 - 0.094824 - 0.230259 = 54.145713
  const u1 = 115.007381;
  const u2 = 54.145713;
  assert.ok(Math.abs(r.u[0] - u1) < 1e-3, `U(x1) ${r.u[0]}`);
  assert.ok(Math.abs(r.u[1] - u2) < 1e-3, `U(x2) ${r.u[1]}`);
  assert.ok(Math.abs(r.sumU - (u1 + u2)) < 1e-3);
  assert.ok(Math.abs(r.sumL - 30) < 1e-4);
  // sum -log q over the labelled: -ln 0.8 - ln 0.5 = 0.223144 + 0.693147.
  assert.ok(Math.abs(r.sumXent - 0.916291) < 1e-5);
  // J = 30 + 169.153094 + 0.916291 = 200.069385, unweighted; the loss is J per example (4).
  assert.ok(Math.abs(r.loss - 200.069385 / 4) < 1e-3, `loss ${r.loss}`);
});

test("--labels picks a balanced subset with the run's seed; the other labels are hidden", () => {
  const labels = Int32Array.from({ length: 1000 }, (_, i) => (i * 7) % 10);
  const a = selectLabelled(labels, 10, 100, 1);
  const b = selectLabelled(labels, 10, 100, 1);
  const c = selectLabelled(labels, 10, 100, 2);
  assert.deepEqual(a, b, "same seed, same subset");
  assert.notDeepEqual(a, c, "another seed, another subset");
  assert.equal(new Set(a).size, 100);
  assert.deepEqual(
    a,
    [...a].sort((x, y) => x - y),
  );
  const perClass = new Array(10).fill(0);
  for (const r of a) perClass[labels[r]]++;
  assert.deepEqual(perClass, new Array(10).fill(10));
  const set = { pixels: new Uint8Array(1000), labels, n: 1000, height: 1, width: 1, channels: 1 };
  const hidden = hideLabels(set, a);
  assert.equal(hidden.labels.filter((y) => y >= 0).length, 100);
  for (const r of a) assert.equal(hidden.labels[r], labels[r]);
  assert.equal(set.labels, labels, "the original labels are not modified");
  assert.deepEqual(classPrior(hidden.labels, 10), new Array(10).fill(0.1));
  assert.throws(() => selectLabelled(labels, 10, 1001, 1), /more than the 1000 training images/);
  assert.throws(() => selectLabelled(labels, 10, 55, 1), /split evenly over the 10 classes/);
  assert.throws(() => selectLabelled(labels, 10, 10, 1), /at least 2 per class/);
});

/** A 12x12, K = 3 semi-supervised model small enough to check values and gradients exactly. */
function tinySemiConfig() {
  return defaultConfig({
    height: 12,
    width: 12,
    channels: 1,
    numClasses: 3,
    dv: 4,
    filters: [4, 4, 4, 4, 4],
    classifier: true,
  });
}

test("classTerms (q(z|x,v)'s conv stack once per x) equals L(x, y) on K tiled copies, values and gradients", () => {
  const cfg = tinySemiConfig();
  const model = new EquiVAE(cfg, 3);
  const [B, K] = [2, 3];
  const vars = model.params.list();
  const r = tf.tidy(() => {
    const x = tf.randomUniform([B, 12, 12, 1], 0, 1, "float32", 1) as tf.Tensor4D;
    const vK = tf.randomNormal([K, cfg.dv], 0, 1, "float32", 2) as tf.Tensor2D;
    const eps = tf.randomNormal([B * K, cfg.dz], 0, 1, "float32", 3) as tf.Tensor2D;
    const shared = () => {
      const t = classTerms(model, x, vK, eps);
      return tf.sum(tf.add(t.recon, t.kl)) as tf.Scalar;
    };
    const tiled = () => {
      const xRep = tf.reshape(tf.tile(tf.expandDims(x, 1), [1, K, 1, 1, 1]), [
        B * K,
        12,
        12,
        1,
      ]) as tf.Tensor4D;
      const t = labelledTerms(model, xRep, tf.tile(vK, [B, 1]) as tf.Tensor2D, eps);
      return tf.sum(tf.add(t.recon, t.kl)) as tf.Scalar;
    };
    const a = tf.variableGrads(shared, vars);
    const b = tf.variableGrads(tiled, vars);
    let maxRel = 0;
    for (const k of Object.keys(b.grads)) {
      const d = tf.max(tf.abs(tf.sub(a.grads[k], b.grads[k]))).dataSync()[0];
      const m = tf.max(tf.abs(b.grads[k])).dataSync()[0];
      maxRel = Math.max(maxRel, d / Math.max(m, 1e-6));
    }
    // Per-(x, y) values in the [B, K] layout: entry (i, y) is row i*K + y of the tiled batch.
    const t = classTerms(model, x, vK, eps);
    const xRep = tf.reshape(tf.tile(tf.expandDims(x, 1), [1, K, 1, 1, 1]), [B * K, 12, 12, 1]) as tf.Tensor4D;
    const u = labelledTerms(model, xRep, tf.tile(vK, [B, 1]) as tf.Tensor2D, eps);
    return {
      a: a.value.dataSync()[0],
      b: b.value.dataSync()[0],
      maxRel,
      shape: t.recon.shape,
      recon: [Array.from(t.recon.dataSync()), Array.from(u.recon.dataSync())],
      kl: [Array.from(t.kl.dataSync()), Array.from(u.kl.dataSync())],
    };
  });
  model.dispose();
  assert.deepEqual(r.shape, [B, K]);
  assert.ok(Math.abs(r.a - r.b) < 1e-3 * Math.abs(r.b), `${r.a} vs ${r.b}`);
  for (const [p, q] of [r.recon, r.kl])
    p.forEach((v, i) => assert.ok(Math.abs(v - q[i]) < 1e-3 * (1 + Math.abs(q[i]))));
  assert.ok(r.maxRel < 1e-4, `largest relative gradient difference ${r.maxRel}`);
});

test("q(y|x) given v(x) computed off the gradient tape equals its stop_gradient form: values and gradients", () => {
  const cfg = tinySemiConfig();
  const model = new EquiVAE(cfg, 4);
  const vars = model.params.list();
  const r = tf.tidy(() => {
    const x = tf.randomUniform([5, 12, 12, 1], 0, 1, "float32", 1) as tf.Tensor4D;
    const w = tf.randomNormal([5, 3], 0, 1, "float32", 2);
    const offTape = model.invariant(x);
    const loss = (v?: tf.Tensor2D) => () =>
      tf.sum(tf.mul(model.classifierLogits(x, undefined, v), w)) as tf.Scalar;
    const a = tf.variableGrads(loss(offTape), vars);
    const b = tf.variableGrads(loss(), vars);
    const norm = (t: tf.Tensor) => tf.max(tf.abs(t)).dataSync()[0];
    const diffs = Object.keys(b.grads).map((k) => ({
      k,
      ref: norm(b.grads[k]),
      d: a.grads[k] ? norm(tf.sub(a.grads[k], b.grads[k])) : norm(b.grads[k]),
    }));
    return { values: [a.value.dataSync()[0], b.value.dataSync()[0]], diffs, keys: Object.keys(a.grads) };
  });
  model.dispose();
  assert.ok(Math.abs(r.values[0] - r.values[1]) < 1e-5 * (1 + Math.abs(r.values[1])), `${r.values}`);
  for (const { k, ref, d } of r.diffs) {
    if (!/(^|\/)cls\//.test(k)) assert.equal(ref, 0, `${k}: stop_gradient lets a gradient through`);
    assert.ok(d <= 1e-5 * (1 + ref), `${k}: gradients differ by ${d}`);
  }
  assert.ok(r.keys.length > 0 && r.keys.every((k) => /(^|\/)cls\//.test(k)), `${r.keys}`);
});

test("a semi-supervised step with an empty unlabelled batch (the warm-up) minimises the labelled terms of J only", () => {
  const cfg = tinySemiConfig();
  const model = new EquiVAE(cfg, 5);
  const n = 12;
  const pixels = new Uint8Array(n * 144);
  const fill = new Rng(7);
  for (let i = 0; i < pixels.length; i++) pixels[i] = Math.floor(fill.next() * 256);
  // Rows 0-5 labelled (two per class), 6-11 unlabelled.
  const labels = Int32Array.from({ length: n }, (_, i) => (i < 6 ? i % 3 : -1));
  const set = { pixels, labels, n, height: 12, width: 12, channels: 1 };
  const sampler = new ComplementarySampler(labels, ["a", "b", "c"]);
  const step = makeSemiStep(model, tf.train.adam(1e-3), set, sampler, classPrior(labels, 3), {
    nMax: 1,
    contextShare: 4,
  });
  const warm = step([0, 1, 2, 3], new Int32Array(0), new Rng(1));
  assert.equal(warm.u, 0);
  // J / B_l = mean L + mean -log q over the labelled batch.
  assert.ok(
    Math.abs(warm.loss - (warm.recon + warm.kl + warm.xent)) < 1e-3 * warm.loss,
    JSON.stringify(warm),
  );
  const before = tf.memory().numTensors; // after Adam has made its slots
  const full = step([0, 1, 2, 3], [6, 7], new Rng(2));
  assert.ok(full.u > 0 && Number.isFinite(full.loss));
  assert.equal(tf.memory().numTensors, before, "no tensors left behind");
  model.dispose();
});
