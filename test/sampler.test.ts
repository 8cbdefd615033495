import { test } from "node:test";
import assert from "node:assert/strict";
import { ComplementarySampler, averagingMatrix, mergeRepeatedRows } from "../src/data/sampler.js";
import { Rng } from "../src/util/rng.js";

const names = ["a", "b", "c"];

test("sampleFor never returns the target and stays in its class", () => {
  const labels = Int32Array.from({ length: 30 }, (_, i) => i % 3);
  const s = new ComplementarySampler(labels, names);
  const rng = new Rng(7);
  for (let t = 0; t < 30; t++) {
    for (let rep = 0; rep < 200; rep++) {
      const n = rng.int(1, 7);
      const set = s.sampleFor(t, labels[t], n, rng);
      assert.equal(set.length, n);
      assert.ok(!set.includes(t), `target ${t} in its own set`);
      assert.equal(new Set(set).size, n, "duplicates");
      for (const j of set) assert.equal(labels[j], labels[t]);
    }
  }
});

test("with 2 members the set is always the other member", () => {
  const labels = Int32Array.from([0, 0, 1, 1, 2, 2]);
  const s = new ComplementarySampler(labels, names);
  const rng = new Rng(1);
  for (let i = 0; i < 50; i++) assert.deepEqual(s.sampleFor(0, 0, 7, rng), [1]);
});

test("batchContexts: shared pools, never the target, uniform over D_y minus x", () => {
  const labels = Int32Array.from({ length: 40 }, (_, i) => i % 2);
  const s = new ComplementarySampler(labels, ["a", "b"]);
  const rng = new Rng(3);
  const counts = new Map<number, number>();
  for (let rep = 0; rep < 3000; rep++) {
    const targets = [0, 2, 4, 6, 8, 1, 3];
    const { rows, sets } = s.batchContexts(targets, labels, 3, 4, rng);
    // Class 0 has 5 targets -> a pool of 4 shared by 4 and the lone fifth target's own 3 rows;
    // class 1 has 2 targets -> 1 pool of 4.
    assert.equal(rows.length, 11);
    sets.forEach((set, i) => {
      assert.equal(set.length, 3);
      for (const j of set) {
        assert.notEqual(rows[j], targets[i], "target in its own context");
        assert.equal(labels[rows[j]], labels[targets[i]]);
      }
      if (i === 0) for (const j of set) counts.set(rows[j], (counts.get(rows[j]) ?? 0) + 1);
    });
  }
  // Target 0 draws from the 19 other even rows, each with probability 3/19.
  assert.equal(counts.size, 19);
  for (const [, c] of counts) assert.ok(Math.abs(c / 3000 - 3 / 19) < 0.04, `frequency ${c / 3000}`);
});

test("batchContexts at share 1: each target's n rows and nothing else go through f", () => {
  const labels = Int32Array.from({ length: 60 }, (_, i) => i % 3);
  const s = new ComplementarySampler(labels, names);
  const rng = new Rng(5);
  const counts = new Map<number, number>();
  for (let rep = 0; rep < 3000; rep++) {
    const targets = [0, 3, 6, 1, 4, 2];
    const n = rng.int(1, 7);
    const { rows, sets } = s.batchContexts(targets, labels, n, 1, rng);
    assert.equal(rows.length, targets.length * n, "n rows per target, no spare pool member");
    sets.forEach((set, i) => {
      assert.equal(set.length, n);
      assert.equal(new Set(set.map((j) => rows[j])).size, n, "distinct members");
      for (const j of set) {
        assert.notEqual(rows[j], targets[i], "target in its own context");
        assert.equal(labels[rows[j]], labels[targets[i]]);
      }
    });
    if (n === 1) counts.set(rows[sets[0][0]], (counts.get(rows[sets[0][0]]) ?? 0) + 1);
  }
  // With n = 1, target 0's one context member is uniform over the 19 other rows of class 0.
  const draws = [...counts.values()].reduce((a, b) => a + b, 0);
  assert.equal(counts.size, 19);
  for (const [, c] of counts) assert.ok(Math.abs(c / draws - 1 / 19) < 0.035, `frequency ${c / draws}`);
});

test("averagingMatrix rows average their set", () => {
  const m = averagingMatrix([[0, 2], [1]], 3);
  assert.deepEqual(Array.from(m), [0.5, 0, 0.5, 0, 1, 0]);
});

test("mergeRepeatedRows: each image once, every set the same images, so the same set means", () => {
  // A small labelled pool (10 rows): 8 targets' sets of 4 plus a pool of every member repeat rows.
  const labels = Int32Array.from({ length: 10 }, (_, i) => i % 2);
  const s = new ComplementarySampler(labels, ["a", "b"]);
  const rng = new Rng(11);
  const { rows, sets } = s.batchContexts([0, 2, 4, 6, 1, 3, 5, 7], labels, 4, 1, rng);
  sets.push([...rows.keys()].slice(0, 3));
  const merged = mergeRepeatedRows({ rows, sets });
  assert.ok(rows.length > 10, `the batch drew ${rows.length} rows`);
  assert.equal(merged.rows.length, new Set(rows).size, "every distinct row once");
  assert.equal(merged.rows.length, new Set(merged.rows).size);
  sets.forEach((set, i) =>
    assert.deepEqual(
      merged.sets[i].map((j) => merged.rows[j]),
      set.map((j) => rows[j]),
    ),
  );
  // Features that depend only on the image (as f's output does): the averages agree.
  const feature = (row: number) => [row, row * row];
  const means = (r: number[], ss: number[][]) => {
    const m = averagingMatrix(ss, r.length);
    return ss.map((_, i) =>
      [0, 1].map((d) => r.reduce((a, row, j) => a + m[i * r.length + j] * feature(row)[d], 0)),
    );
  };
  const a = means(rows, sets);
  const b = means(merged.rows, merged.sets);
  a.forEach((m, i) => m.forEach((v, d) => assert.ok(Math.abs(v - b[i][d]) < 1e-4, `${v} vs ${b[i][d]}`)));
});

test("a class with fewer than 2 members is a clear error", () => {
  assert.throws(
    () => new ComplementarySampler(Int32Array.from([0, 0, 1, 2, 2]), names),
    /class 1 \(b\) has 1 labelled member; every class needs at least 2/,
  );
  assert.throws(
    () => new ComplementarySampler(Int32Array.from([0, 0, 2, 2]), names),
    /class 1 \(b\) has 0 labelled members/,
  );
});
