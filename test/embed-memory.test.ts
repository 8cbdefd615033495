import { test } from "node:test";
import assert from "node:assert/strict";
import { openSync, readSync, closeSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseNpyHeader } from "../src/embed/npy.js";
import { runCli } from "./helpers/cli.js";
import { writeIdx } from "./helpers/embed.js";
import { tempDir } from "./helpers/paths.js";

interface Stats {
  records: number;
  embedded: number;
  peakRssMiB: number;
}

function embedStats(input: string, output: string): Stats {
  const r = runCli([
    "embed",
    "--input",
    input,
    "--output",
    output,
    "--what",
    "v",
    "--threads",
    "1",
    "--quiet",
    "--stats",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  return JSON.parse(lines[lines.length - 1]) as Stats;
}

// The baseline is 20,000 images, not fewer: the worker threads' heaps take that long to reach their
// steady state (their young generation is collected every 15-30 MB of batches), so a shorter run
// would count that warm-up as growth.
test("memory stays flat: 100,000 images (78 MB of IDX) peak under 400 MiB, within 48 MiB of a 20,000-image run", () => {
  const dir = tempDir("equivae-embed-mem-");
  const big = join(dir, "big-idx3-ubyte");
  const small = join(dir, "small-idx3-ubyte");
  writeIdx(big, 100_000); // written 1,000 images at a time
  writeIdx(small, 20_000);
  const s = embedStats(small, join(dir, "small.npy"));
  const b = embedStats(big, join(dir, "big.npy"));
  assert.equal(b.embedded, 100_000);
  assert.equal(s.embedded, 20_000);
  const out = join(dir, "big.npy");
  const head = Buffer.alloc(128);
  const fd = openSync(out, "r");
  readSync(fd, head, 0, 128, 0);
  closeSync(fd);
  assert.deepEqual(parseNpyHeader(head).shape, [100_000, 16]);
  assert.equal(statSync(out).size, 128 + 100_000 * 16 * 4);
  console.log(`peak RSS: ${s.peakRssMiB} MiB for 20,000 images, ${b.peakRssMiB} MiB for 100,000`);
  assert.ok(b.peakRssMiB < 400, `peak RSS ${b.peakRssMiB} MiB`);
  assert.ok(b.peakRssMiB - s.peakRssMiB < 48, `peak RSS grew from ${s.peakRssMiB} to ${b.peakRssMiB} MiB`);
});
