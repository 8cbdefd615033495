/**
 * The training step's kernel-saving parts against TF.js's own: FlatAdam against tf.train.adam
 * (same trajectory, interchangeable saved state) and biasRelu's hand-written gradient against
 * the gradient of tf.relu(tf.add(x, b)).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { FlatAdam } from "../src/train/flat-adam.js";
import { checkBiasRelu, randomTensor } from "./helpers/bias-relu.js";

await tf.setBackend("cpu");

/** Two variables of different shapes and a loss that is not quadratic. */
function problem(seed: number) {
  const w = tf.variable(randomTensor([3, 4], seed));
  const b = tf.variable(randomTensor([4], seed + 1));
  const x = randomTensor([5, 3], seed + 2);
  const loss = () => tf.sum(tf.square(tf.tanh(tf.add(tf.matMul(x, w), b)))) as tf.Scalar;
  return { vars: [w, b], loss, dispose: () => tf.dispose([w, b, x]) };
}

function maxDiff(a: tf.Tensor[], b: tf.Tensor[]): number {
  let m = 0;
  a.forEach((t, i) => {
    const x = t.dataSync();
    const y = b[i].dataSync();
    for (let j = 0; j < x.length; j++) m = Math.max(m, Math.abs(x[j] - y[j]));
  });
  return m;
}

test("FlatAdam takes the same steps as tf.train.adam", () => {
  const p = problem(1);
  const q = problem(1);
  const ours = new FlatAdam(0.05);
  const theirs = tf.train.adam(0.05);
  for (let s = 0; s < 20; s++) {
    ours.minimize(p.loss, false, p.vars);
    theirs.minimize(q.loss, false, q.vars);
  }
  const d = maxDiff(p.vars, q.vars);
  assert.ok(d < 1e-5, `max |difference| ${d}`);
  const moved = maxDiff(p.vars, problem(1).vars);
  assert.ok(moved > 0.1, `20 steps moved the variables by only ${moved}`);
  ours.dispose();
  theirs.dispose();
  p.dispose();
  q.dispose();
});

test("FlatAdam's saved state resumes in tf.train.adam and the other way round", async () => {
  for (const [first, second] of [
    [() => new FlatAdam(0.05), () => tf.train.adam(0.05)],
    [() => tf.train.adam(0.05), () => new FlatAdam(0.05)],
  ] as const) {
    const straight = problem(2);
    const resumed = problem(2);
    const a = first();
    for (let s = 0; s < 10; s++) a.minimize(straight.loss, false, straight.vars);
    const b = first();
    for (let s = 0; s < 5; s++) b.minimize(resumed.loss, false, resumed.vars);
    // Saved with names of this process's variables; restored positionally, as a checkpoint is.
    const saved = (await b.getWeights()).map((w) => ({ name: w.name, tensor: w.tensor.clone() }));
    const c = second();
    await c.setWeights(saved);
    for (let s = 0; s < 5; s++) c.minimize(resumed.loss, false, resumed.vars);
    const d = maxDiff(straight.vars, resumed.vars);
    assert.ok(d < 1e-5, `${a.constructor.name} -> ${c.constructor.name}: max |difference| ${d}`);
    [a, b, c].forEach((o) => o.dispose());
    straight.dispose();
    resumed.dispose();
  }
});

test("FlatAdam leaves no tensors behind: steps, getWeights and dispose", async () => {
  const p = problem(4);
  const before = tf.memory().numTensors;
  const opt = new FlatAdam(0.01);
  opt.minimize(p.loss, false, p.vars);
  await opt.getWeights();
  const steady = tf.memory().numTensors;
  for (let s = 0; s < 10; s++) opt.minimize(p.loss, false, p.vars);
  await opt.getWeights();
  await opt.getWeights();
  assert.equal(tf.memory().numTensors, steady, "tensors after 10 more steps and 2 more getWeights");
  opt.dispose();
  assert.equal(tf.memory().numTensors, before, "tensors after dispose");
  // A resumed optimizer (setWeights) too.
  const other = new FlatAdam(0.01);
  other.minimize(p.loss, false, p.vars);
  const saved = (await other.getWeights()).map((w) => ({ name: w.name, tensor: w.tensor.clone() }));
  other.dispose();
  const resumed = new FlatAdam(0.01);
  await resumed.setWeights(saved);
  resumed.minimize(p.loss, false, p.vars);
  resumed.dispose();
  tf.dispose(saved.map((w) => w.tensor));
  assert.equal(tf.memory().numTensors, before, "tensors after setWeights, a step and dispose");
  p.dispose();
});

test("FlatAdam picks up variables assigned between its steps (a checkpoint loaded, the average swapped)", () => {
  // FlatAdam steps a flat copy of the parameters; a value assigned from outside must not be lost.
  const ours = problem(7);
  const theirs = problem(7);
  const a = new FlatAdam(0.05);
  const b = tf.train.adam(0.05);
  for (let s = 0; s < 6; s++) {
    a.minimize(ours.loss, false, ours.vars);
    b.minimize(theirs.loss, false, theirs.vars);
    if (s % 2 === 0) {
      const value = randomTensor([3, 4], 20 + s);
      ours.vars[0].assign(value);
      theirs.vars[0].assign(value);
      value.dispose();
    }
  }
  const d = maxDiff(ours.vars, theirs.vars);
  assert.ok(d < 1e-5, `max |difference| ${d}`);
  a.dispose();
  b.dispose();
  ours.dispose();
  theirs.dispose();
});

test("FlatAdam refuses gradients that do not match its state", async () => {
  const p = problem(3);
  const opt = new FlatAdam(0.01);
  opt.minimize(p.loss, false, p.vars);
  assert.throws(() => opt.minimize(p.loss, false, [p.vars[0]]), /do not match the optimizer's state/);
  opt.dispose();
  p.dispose();
});

test("biasRelu's gradient equals that of relu(x + b), for dense and conv shapes", async () => {
  for (const shape of [
    [6, 5],
    [2, 4, 3, 5],
  ]) {
    const r = await checkBiasRelu(shape);
    assert.ok(r.gradient < 1e-6, `shape ${shape}: max |difference| ${r.gradient}`);
    assert.equal(r.forward, 0, "forward");
  }
});
