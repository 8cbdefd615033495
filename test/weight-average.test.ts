/**
 * WeightAverage (train --ema-decay): the average it swaps in is the exponential moving average of
 * what the variables held, every `every` steps, and the raw weights come back exactly.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { Params } from "../src/model/params.js";
import { WeightAverage } from "../src/train/weight-average.js";
import { Rng } from "../src/util/rng.js";

await tf.setBackend("cpu");

test("the average is the EMA of the variables (decay^every per update) and raw weights return exactly", async () => {
  const p = new Params(new Rng(3));
  p.add("w", [2, 3], 2, 3);
  p.zeros("b", [3]);
  const before = tf.memory().numTensors;
  const avg = new WeightAverage(p, 0.8, 2);
  // What the average should be, per value, in float64 (the variables' values drift each step).
  const expected = new Map([...p.vars].map(([k, v]) => [k, Array.from(v.dataSync())]));
  const keep = 0.8 ** 2;
  for (let step = 1; step <= 7; step++) {
    for (const [k, v] of p.vars) {
      const next = Array.from(v.dataSync(), (x, i) => x + Math.sin(step * 3 + i) * (k === "b" ? 1 : 0.5));
      const t = tf.tensor(next, v.shape);
      v.assign(t);
      t.dispose();
    }
    avg.afterStep(step);
    if (step % 2 === 0) {
      for (const [k, v] of p.vars) {
        const now = v.dataSync();
        expected.set(
          k,
          expected.get(k)!.map((s, i) => keep * s + (1 - keep) * now[i]),
        );
      }
    }
  }
  const raw = new Map([...p.vars].map(([k, v]) => [k, Float32Array.from(v.dataSync())]));
  const seen = await avg.withAverage(async (rawMap) => {
    for (const [k, v] of p.vars) {
      const got = v.dataSync();
      expected
        .get(k)!
        .forEach((x, i) => assert.ok(Math.abs(got[i] - x) < 1e-5, `${k}[${i}]: ${got[i]} vs ${x}`));
      assert.deepEqual(rawMap[k].dataSync(), raw.get(k), `${k}: the raw weights offered to fn`);
    }
    return "ran";
  });
  assert.equal(seen, "ran");
  for (const [k, v] of p.vars)
    assert.deepEqual(v.dataSync(), raw.get(k), `${k}: raw weights after withAverage`);
  // The raw weights come back even when fn throws.
  await assert.rejects(
    avg.withAverage(async () => {
      throw new Error("boom");
    }),
    /boom/,
  );
  for (const [k, v] of p.vars) assert.deepEqual(v.dataSync(), raw.get(k), `${k}: raw weights after a throw`);
  avg.dispose();
  assert.equal(tf.memory().numTensors, before, "tensors left behind");
  p.dispose();
});
