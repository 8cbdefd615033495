import { before, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/backend/index.js";
import { defaultConfig, MAX_PARAMETERS } from "../src/model/config.js";
import { EquiVAE } from "../src/model/equivae.js";
import { bernoulli } from "../src/model/likelihood.js";
import { conv2dFewOutputs } from "../src/model/params.js";
import { gaussianKl } from "../src/model/objective.js";
import { loadIdxDataset } from "../src/data/mnist.js";
import { ComplementarySampler } from "../src/data/sampler.js";
import { FlatAdam } from "../src/train/flat-adam.js";
import { makeTrainStep } from "../src/train/trainer.js";
import { Rng } from "../src/util/rng.js";
import { MNIST_DIR } from "./helpers/paths.js";

before(async () => {
  await initBackend("wasm");
});

const mnistCfg = () => defaultConfig({ height: 28, width: 28, channels: 1, numClasses: 10 });

test("default models stay under 1M parameters", () => {
  for (const cfg of [
    mnistCfg(),
    defaultConfig({ height: 32, width: 32, channels: 3, numClasses: 10 }),
    defaultConfig({ height: 28, width: 28, channels: 1, numClasses: 10, dv: 8 }),
  ]) {
    const m = new EquiVAE(cfg);
    const parts = m.parameterBreakdown();
    assert.equal(
      Object.values(parts).reduce((a, b) => a + b, 0),
      m.parameterCount,
    );
    assert.ok(m.parameterCount < MAX_PARAMETERS && m.parameterCount > 300_000, `${m.parameterCount}`);
    m.dispose();
  }
  // Filters 32,32,64,64,64 give too many, as the spec says.
  assert.throws(
    () =>
      new EquiVAE(
        defaultConfig({ height: 28, width: 28, channels: 1, numClasses: 10, filters: [32, 32, 64, 64, 64] }),
      ),
    /the limit is 1,000,000/,
  );
});

test("shapes: v, (mu, logvar) and the decoder output mirror the input", () => {
  const m = new EquiVAE(defaultConfig({ height: 32, width: 32, channels: 3, numClasses: 10 }));
  tf.tidy(() => {
    const x = tf.randomUniform([3, 32, 32, 3]) as tf.Tensor4D;
    const v = m.invariant(x);
    assert.deepEqual(v.shape, [3, 16]);
    const { mu, logvar } = m.encode(x, v);
    assert.deepEqual(mu.shape, [3, 16]);
    assert.deepEqual(logvar.shape, [3, 16]);
    assert.deepEqual(m.decode(v, mu).shape, [3, 32, 32, 3]);
  });
  m.dispose();
});

test("conv2dFewOutputs (the decoder's last conv) equals tf.conv2d, values and gradients", () => {
  for (const [outC, k, stride] of [
    [1, 5, 1],
    [3, 5, 1],
    [1, 3, 1],
    [1, 4, 1],
    [1, 5, 2],
  ]) {
    const r = tf.tidy(() => {
      const h = tf.randomNormal([3, 12, 10, 16], 0, 1, "float32", 1) as tf.Tensor4D;
      const kernel = tf.randomNormal([k, k, 16, outC], 0, 0.2, "float32", 2) as tf.Tensor4D;
      const ref = tf.conv2d(h, kernel, stride, "same");
      const w = tf.randomNormal(ref.shape, 0, 1, "float32", 3);
      const grads = (f: (a: tf.Tensor4D, b: tf.Tensor4D) => tf.Tensor) =>
        tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(f(a as tf.Tensor4D, b as tf.Tensor4D), w)))([
          h,
          kernel,
        ]);
      const ours = conv2dFewOutputs(h, kernel, stride);
      const g1 = grads((a, b) => conv2dFewOutputs(a, b, stride));
      const g2 = grads((a, b) => tf.conv2d(a, b, stride, "same"));
      const rel = (a: tf.Tensor, b: tf.Tensor) =>
        tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] / tf.max(tf.abs(b)).dataSync()[0];
      return {
        shape: ours.shape,
        refShape: ref.shape,
        out: rel(ours, ref),
        dh: rel(g1[0], g2[0]),
        dk: rel(g1[1], g2[1]),
      };
    });
    const what = `${outC} outputs, kernel ${k}, stride ${stride}`;
    assert.deepEqual(r.shape, r.refShape, what);
    for (const [name, d] of Object.entries({ out: r.out, dh: r.dh, dk: r.dk }))
      assert.ok(d < 1e-5, `${what}: ${name} differs by ${d} (relative)`);
  }
});

test("v is a set function: unchanged under reordering, and equal to g(mean f) for n = 1..7", () => {
  const m = new EquiVAE(mnistCfg(), 5);
  tf.tidy(() => {
    const ctx = tf.randomUniform([7, 28, 28, 1], 0, 1, "float32", 11) as tf.Tensor4D;
    const fx = m.f(ctx);
    for (let n = 1; n <= 7; n++) {
      const avg = tf.concat([tf.fill([1, n], 1 / n), tf.zeros([1, 7 - n])], 1) as tf.Tensor2D;
      const v = m.setInvariant(ctx, avg);
      const direct = m.g(tf.mean(fx.slice([0, 0], [n, -1]), 0, true) as tf.Tensor2D);
      assert.ok(tf.max(tf.abs(tf.sub(v, direct))).dataSync()[0] < 1e-5);
      // Reverse the rows and permute the averaging matrix to match.
      const perm = [6, 5, 4, 3, 2, 1, 0];
      const ctxR = tf.gather(ctx, perm) as tf.Tensor4D;
      const avgR = tf.gather(avg, perm, 1) as tf.Tensor2D;
      const vR = m.setInvariant(ctxR, avgR);
      assert.ok(tf.max(tf.abs(tf.sub(v, vR))).dataSync()[0] < 1e-5, `n=${n}`);
    }
    // n = 1 set embedding equals the direct embedding.
    const one = m.setInvariant(ctx, tf.oneHot([3], 7).toFloat() as tf.Tensor2D);
    const direct = m.invariant(ctx.slice([3, 0, 0, 0], [1, -1, -1, -1]) as tf.Tensor4D);
    assert.ok(tf.max(tf.abs(tf.sub(one, direct))).dataSync()[0] < 1e-5);
  });
  m.dispose();
});

test("Bernoulli log-likelihood and analytic KL match hand computation", () => {
  tf.tidy(() => {
    const x = tf.tensor4d([1, 0, 0.25, 1], [1, 2, 2, 1]);
    const l = tf.tensor4d([0, 2, -1, -3], [1, 2, 2, 1]);
    const sig = (a: number) => 1 / (1 + Math.exp(-a));
    const ll = (xi: number, li: number) => xi * Math.log(sig(li)) + (1 - xi) * Math.log(1 - sig(li));
    const want = ll(1, 0) + ll(0, 2) + ll(0.25, -1) + ll(1, -3);
    assert.ok(Math.abs(bernoulli.logProb(x, l).dataSync()[0] - want) < 1e-4);
    const mu = tf.tensor2d([[1, -2]]);
    const lv = tf.tensor2d([[0, Math.log(4)]]);
    const kl = 0.5 * (1 + 1 - 1 - 0) + 0.5 * (4 + 4 - 1 - Math.log(4));
    assert.ok(Math.abs(gaussianKl(mu, lv).dataSync()[0] - kl) < 1e-5);
  });
});

test("tf.memory().numTensors is flat across 50 training steps", () => {
  const data = loadIdxDataset("mnist", { dataDir: MNIST_DIR, trainSize: 500, valSize: 10 });
  const m = new EquiVAE(mnistCfg(), 2);
  const opt = new FlatAdam(1e-3); // as train() uses
  const sampler = new ComplementarySampler(data.train.labels, data.classNames);
  const step = makeTrainStep(m, opt, data.train, sampler, { nMax: 7, contextShare: 4 });
  const rng = new Rng(9);
  const batch = () => Array.from({ length: 16 }, () => rng.int(0, data.train.n - 1));
  step(batch(), rng); // Adam creates its slot variables on the first step.
  const before = tf.memory().numTensors;
  let first = 0;
  let last = 0;
  for (let i = 0; i < 50; i++) {
    const r = step(batch(), rng);
    assert.ok(Number.isFinite(r.recon) && Number.isFinite(r.kl));
    if (i === 0) first = r.recon + r.kl;
    last = r.recon + r.kl;
  }
  assert.equal(tf.memory().numTensors, before);
  assert.ok(last < first, `loss did not fall: ${first} -> ${last}`);
  opt.dispose();
  m.dispose();
});
