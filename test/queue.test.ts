// The batching queue (src/inference/queue.ts) alone, with a recording runner: coalescing by op,
// the batch-size cap, the batch delay, concurrency, and work dropped when its signal aborts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { BatchQueue, type BatchRunner } from "../src/inference/queue.js";

interface Call {
  op: string;
  rows: number;
}

/** A runner that doubles its single input, records each call, and can be held until released. */
function recorder(hold = false) {
  const calls: Call[] = [];
  const releases: Array<() => void> = [];
  const runner: BatchRunner = async (op, inputs, rows) => {
    calls.push({ op, rows });
    if (hold) await new Promise<void>((r) => releases.push(r));
    return [inputs[0].map((x) => 2 * x)];
  };
  return { calls, runner, release: () => releases.splice(0).forEach((r) => r()) };
}

const rowsOf = (...xs: number[]) => Float32Array.from(xs);

test("waiting jobs of one op are coalesced into one call and each gets its own rows", async () => {
  const r = recorder(true);
  const q = new BatchQueue(r.runner, { concurrency: 1, maxBatchSize: 64 });
  const first = q.submit("invariant", 1, [rowsOf(1)]);
  // The first job runs alone (nothing waited with it); the next three wait together.
  const rest = [q.submit("invariant", 2, [rowsOf(2, 3)]), q.submit("invariant", 1, [rowsOf(4)])];
  const other = q.submit("decode", 1, [rowsOf(5)]);
  await new Promise((res) => setImmediate(res));
  r.release();
  await first;
  await new Promise((res) => setImmediate(res));
  r.release();
  const [a, b] = await Promise.all(rest);
  assert.deepEqual(Array.from(a[0]), [4, 6]);
  assert.deepEqual(Array.from(b[0]), [8]);
  await new Promise((res) => setImmediate(res));
  r.release();
  assert.deepEqual(Array.from((await other)[0]), [10]);
  assert.deepEqual(r.calls, [
    { op: "invariant", rows: 1 },
    { op: "invariant", rows: 3 },
    { op: "decode", rows: 1 },
  ]);
  await q.idle();
});

test("a batch never passes maxBatchSize rows", async () => {
  const r = recorder(true);
  const q = new BatchQueue(r.runner, { concurrency: 1, maxBatchSize: 4 });
  const jobs = Array.from({ length: 9 }, (_, i) => q.submit("invariant", 1, [rowsOf(i)]));
  for (let k = 0; k < 4; k++) {
    await new Promise((res) => setImmediate(res));
    r.release();
  }
  const out = await Promise.all(jobs);
  assert.deepEqual(
    out.map((o) => o[0][0]),
    Array.from({ length: 9 }, (_, i) => 2 * i),
  );
  assert.deepEqual(
    r.calls.map((c) => c.rows),
    [1, 4, 4],
  );
});

test("with a batch delay, jobs arriving within it share one call", async () => {
  const r = recorder();
  const q = new BatchQueue(r.runner, { concurrency: 1, maxBatchSize: 64, maxBatchDelayUs: 30_000 });
  const a = q.submit("invariant", 1, [rowsOf(1)]);
  await new Promise((res) => setTimeout(res, 5));
  const b = q.submit("invariant", 1, [rowsOf(2)]);
  await Promise.all([a, b]);
  assert.deepEqual(r.calls, [{ op: "invariant", rows: 2 }]);
  // Without the delay the first job would have run at once, alone.
  const r0 = recorder();
  const q0 = new BatchQueue(r0.runner, { concurrency: 1, maxBatchSize: 64 });
  const c = q0.submit("invariant", 1, [rowsOf(1)]);
  await new Promise((res) => setTimeout(res, 5));
  await Promise.all([c, q0.submit("invariant", 1, [rowsOf(2)])]);
  assert.deepEqual(
    r0.calls.map((x) => x.rows),
    [1, 1],
  );
});

test("a full batch does not wait for the delay", async () => {
  const r = recorder();
  const q = new BatchQueue(r.runner, { concurrency: 1, maxBatchSize: 2, maxBatchDelayUs: 5_000_000 });
  const t0 = performance.now();
  await Promise.all([q.submit("invariant", 1, [rowsOf(1)]), q.submit("invariant", 1, [rowsOf(2)])]);
  assert.ok(performance.now() - t0 < 1000, "ran without waiting 5 s");
  assert.deepEqual(r.calls, [{ op: "invariant", rows: 2 }]);
});

test("up to `concurrency` calls run at once", async () => {
  let running = 0;
  let peak = 0;
  const q = new BatchQueue(
    async (_op, inputs) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 20));
      running--;
      return inputs;
    },
    { concurrency: 2, maxBatchSize: 1 },
  );
  await Promise.all(Array.from({ length: 6 }, (_, i) => q.submit("invariant", 1, [rowsOf(i)])));
  assert.equal(peak, 2);
});

test("a job whose client went away is dropped before it costs inference", async () => {
  const r = recorder(true);
  const q = new BatchQueue(r.runner, { concurrency: 1, maxBatchSize: 64 });
  const first = q.submit("invariant", 1, [rowsOf(1)]);
  const ac = new AbortController();
  const gone = q.submit("invariant", 1, [rowsOf(2)], ac.signal);
  const kept = q.submit("invariant", 1, [rowsOf(3)]);
  ac.abort(new Error("client went away"));
  await assert.rejects(gone, /client went away/);
  assert.equal(q.waiting, 1);
  await new Promise((res) => setImmediate(res));
  r.release();
  await first;
  await new Promise((res) => setImmediate(res));
  r.release();
  assert.deepEqual(Array.from((await kept)[0]), [6]);
  assert.deepEqual(
    r.calls.map((c) => c.rows),
    [1, 1],
    "the aborted job never reached the runner",
  );
  // An already-aborted signal is refused at once.
  await assert.rejects(q.submit("invariant", 1, [rowsOf(4)], AbortSignal.abort(new Error("late"))), /late/);
});

test("work that runs alone, errors reach every job of the batch, and idle()", async () => {
  const q = new BatchQueue(
    async (op) => {
      if (op === "bad") throw new Error("engine failed");
      return [rowsOf(0)];
    },
    { concurrency: 1 },
  );
  assert.equal(await q.alone("set", 3, async () => "ran alone"), "ran alone");
  const bad = [q.submit("bad", 1, [rowsOf(1)]), q.submit("bad", 1, [rowsOf(2)])];
  for (const b of bad) await assert.rejects(b, /engine failed/);
  await q.idle();
  assert.equal(q.running, 0);
  assert.throws(() => new BatchQueue(async () => [], { maxBatchSize: 0 }), /maxBatchSize/);
  assert.throws(() => q.submit("invariant", 0, [rowsOf()]), /rows/);
});
