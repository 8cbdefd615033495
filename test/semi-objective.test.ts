import { before, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/backend/index.js";
import { semiSupervisedObjective } from "../src/model/objective.js";
import { classPrior, hideLabels, selectLabelled } from "../src/train/semi.js";

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
