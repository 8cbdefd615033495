import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { PNG } from "pngjs";
import { cmdReport, writeReport } from "../src/report/command.js";
import { curvesLayout } from "../src/report/curves.js";
import { INTERPOLATION_STEPS, interpolationRows, SAMPLE_ROWS } from "../src/report/figures.js";
import { CELL_GAP, CELL_SCALE, WIDE_GAP } from "../src/report/grid.js";
import { loadIdxDataset } from "../src/data/mnist.js";
import { batchPixels, type ImageSet } from "../src/data/dataset.js";
import { loadEngine, type Engine } from "../src/inference/index.js";
import { UserError } from "../src/util/errors.js";
import { MNIST_DIR, ROOT, tempDir } from "./helpers/paths.js";

const MODEL = join(ROOT, "models", "mnist");
const SEED = 7;
const NAMES = ["samples", "interpolation", "style-transfer", "curves"];
const K = 10;
const H = 28;
const CELL = H * CELL_SCALE;

let out1: string;
let out2: string;
let logged: string[] = [];
let engine: Engine;
let val: ImageSet;

/** Runs cmdReport with console.log captured. */
async function run(argv: string[]): Promise<string[]> {
  const lines: string[] = [];
  const orig = console.log;
  console.log = (...a: unknown[]) => void lines.push(a.join(" "));
  try {
    await cmdReport(argv);
  } finally {
    console.log = orig;
  }
  return lines;
}

function read(dir: string, name: string): PNG {
  return PNG.sync.read(readFileSync(join(dir, `mnist-${name}.png`)));
}

/** Grid size: cells of CELL px, CELL_GAP between and around them, WIDE_GAP after `wide` columns. */
function gridSize(rows: number, cols: number, wide: number): { width: number; height: number } {
  return {
    width: CELL_GAP + cols * (CELL + CELL_GAP) + wide * (WIDE_GAP - CELL_GAP),
    height: CELL_GAP + rows * (CELL + CELL_GAP),
  };
}

/** Left edge of column j when wide gaps follow the columns in `wideAfter`. */
function colX(j: number, wideAfter: number[]): number {
  let x = CELL_GAP;
  for (let k = 0; k < j; k++) x += CELL + (wideAfter.includes(k) ? WIDE_GAP : CELL_GAP);
  return x;
}

/** The 28x28 image of a cell, read back from the PNG (one pixel per scaled block), in [0, 1]. */
function cell(png: PNG, row: number, col: number, wideAfter: number[] = []): Float32Array {
  const x0 = colX(col, wideAfter);
  const y0 = CELL_GAP + row * (CELL + CELL_GAP);
  const out = new Float32Array(H * H);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < H; x++) {
      const o = ((y0 + y * CELL_SCALE) * png.width + x0 + x * CELL_SCALE) * 4;
      out[y * H + x] = png.data[o] / 255;
    }
  }
  return out;
}

function meanAbsDiff(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
}

function variance(png: PNG): number {
  let s = 0;
  let s2 = 0;
  const n = png.width * png.height;
  for (let i = 0; i < n; i++) {
    const v = png.data[4 * i];
    s += v;
    s2 += v * v;
  }
  return s2 / n - (s / n) ** 2;
}

before(async () => {
  out1 = tempDir("equivae-report-");
  out2 = tempDir("equivae-report-");
  logged = await run([MODEL, "--out", out1, "--data-dir", MNIST_DIR, "--seed", String(SEED)]);
  engine = await loadEngine(MODEL, { threads: 1 });
  val = loadIdxDataset("mnist", { dataDir: MNIST_DIR, trainSize: 0 }).validation;
});

after(async () => {
  await engine?.dispose();
  for (const d of [out1, out2]) if (d) rmSync(d, { recursive: true, force: true });
});

test("report writes the four PNGs with the grid layout's sizes and prints each with its size", () => {
  for (const n of NAMES) assert.ok(existsSync(join(out1, `mnist-${n}.png`)), n);
  assert.equal(logged.length, 4, logged.join("\n"));
  for (const [i, n] of NAMES.entries())
    assert.match(logged[i], new RegExp(`mnist-${n}\\.png \\(\\d+\\.\\d KiB`));
  const expect: Record<string, { width: number; height: number }> = {
    samples: gridSize(SAMPLE_ROWS, K, 0),
    interpolation: gridSize(Math.min(K, 10), INTERPOLATION_STEPS + 2, 2),
    "style-transfer": gridSize(Math.min(K, 10), K + 1, 1),
    curves: { width: curvesLayout().width, height: curvesLayout().height },
  };
  for (const n of NAMES) {
    const png = read(out1, n);
    assert.deepEqual({ width: png.width, height: png.height }, expect[n], n);
    assert.ok(variance(png) > 100, `${n} is blank`);
  }
  assert.deepEqual(expect.samples, { width: 582, height: 466 });
});

test("samples: every row's cells differ between classes (same z, different centroid)", () => {
  const png = read(out1, "samples");
  for (let r = 0; r < SAMPLE_ROWS; r++) {
    for (let y = 1; y < K; y++) {
      const d = meanAbsDiff(cell(png, r, y - 1), cell(png, r, y));
      assert.ok(d > 0.03, `row ${r}: classes ${y - 1} and ${y} look the same (${d})`);
    }
  }
  // Digits are bright strokes on dark: not all ink, not all background.
  const c = cell(png, 0, 0);
  const ink = c.filter((p) => p > 0.5).length / c.length;
  assert.ok(ink > 0.03 && ink < 0.5, `ink fraction ${ink}`);
});

test("style transfer: the original first, then one column per class that differ from each other", () => {
  const png = read(out1, "style-transfer");
  for (let r = 0; r < 10; r++) {
    for (let y = 2; y <= K; y++) {
      const d = meanAbsDiff(cell(png, r, y - 1, [0]), cell(png, r, y, [0]));
      assert.ok(d > 0.03, `row ${r}: classes ${y - 2} and ${y - 1} look the same (${d})`);
    }
  }
});

test("interpolation rows start at decode(centroid, z_a) and end at decode(centroid, z_b)", async () => {
  const png = read(out1, "interpolation");
  const wide = [0, INTERPOLATION_STEPS];
  const rows = await interpolationRows(engine, val, SEED);
  assert.equal(rows.length, 10);
  const dv = engine.config.dv;
  for (const [r, row] of rows.entries()) {
    assert.equal(row.label, r);
    assert.notEqual(row.a, row.b);
    assert.equal(val.labels[row.a], r);
    assert.equal(val.labels[row.b], r);
    const x = batchPixels(val, [row.a, row.b]);
    const v = await engine.embedInvariant(x, 2);
    const { mu } = await engine.encodeEquivariant(x, 2, v);
    const c = engine.centroids.slice(r * dv, (r + 1) * dv);
    const dec = await engine.decode(Float32Array.from([...c, ...c]), mu, 2);
    const ends: Array<[number, Float32Array]> = [
      [1, dec.subarray(0, H * H)],
      [INTERPOLATION_STEPS, dec.subarray(H * H)],
    ];
    for (const [col, want] of ends) {
      const got = cell(png, r, col, wide);
      assert.ok(meanAbsDiff(got, want) < 0.01, `row ${r} col ${col}: ${meanAbsDiff(got, want)}`);
    }
    // The real images at the row's ends, exactly.
    assert.ok(meanAbsDiff(cell(png, r, 0, wide), x.subarray(0, H * H)) < 1e-6);
    assert.ok(meanAbsDiff(cell(png, r, INTERPOLATION_STEPS + 1, wide), x.subarray(H * H)) < 1e-6);
    // The two ends differ: the row shows a change of style.
    const first = cell(png, r, 1, wide);
    const last = cell(png, r, INTERPOLATION_STEPS, wide);
    assert.ok(meanAbsDiff(first, last) > 0.01, `row ${r}: no change along the interpolation`);
  }
});

test("curves: dark pixels (text, axes) and the line's colour in every panel", () => {
  const png = read(out1, "curves");
  for (const [i, p] of curvesLayout().panels.entries()) {
    let dark = 0;
    let coloured = 0;
    for (let y = p.y; y < p.y + p.h; y++) {
      for (let x = p.x; x < p.x + p.w; x++) {
        const o = (y * png.width + x) * 4;
        const [r, g, b] = [png.data[o], png.data[o + 1], png.data[o + 2]];
        if (r + g + b < 200) dark++;
        if (Math.max(r, g, b) - Math.min(r, g, b) > 60) coloured++;
      }
    }
    assert.ok(dark > 500, `panel ${i}: ${dark} dark pixels`);
    assert.ok(coloured > 100, `panel ${i}: ${coloured} line pixels`);
  }
});

test("bad flags and arguments are UserErrors", async () => {
  await assert.rejects(cmdReport([MODEL, "--bogus"]), UserError);
  await assert.rejects(cmdReport([]), UserError);
  await assert.rejects(cmdReport([MODEL, "extra"]), UserError);
  await assert.rejects(cmdReport([MODEL, "--seed", "x"]), UserError);
  await assert.rejects(cmdReport([MODEL, "--seed"]), UserError);
  await assert.rejects(cmdReport([MODEL, "--prefix", "../evil", "--out", out2]), UserError);
});

test("the same seed gives byte-identical files; another seed gives other samples", async () => {
  await run([MODEL, "--out", out2, "--data-dir", MNIST_DIR, "--seed", String(SEED)]);
  for (const n of NAMES) {
    const a = readFileSync(join(out1, `mnist-${n}.png`));
    const b = readFileSync(join(out2, `mnist-${n}.png`));
    assert.ok(a.equals(b), `${n} differs between two runs with the same seed`);
  }
  await run([MODEL, "--out", out2, "--data-dir", MNIST_DIR, "--seed", String(SEED + 1), "--prefix", "other"]);
  const a = readFileSync(join(out1, "mnist-samples.png"));
  const b = readFileSync(join(out2, "other-samples.png"));
  assert.ok(!a.equals(b));
});

test("without the dataset, samples and curves are still written and the rest is skipped in one line", async () => {
  const dir = tempDir("equivae-report-");
  try {
    const lines: string[] = [];
    const r = await writeReport(MODEL, {
      out: dir,
      dataDir: join(dir, "no-such-data"),
      seed: 1,
      log: (l) => lines.push(l),
    });
    assert.deepEqual(
      r.files.map((f) => f.path),
      [join(dir, "mnist-samples.png"), join(dir, "mnist-curves.png")],
    );
    assert.ok(r.skipped);
    assert.equal(lines.length, 3);
    assert.match(lines[2], /^skipped mnist-interpolation\.png and mnist-style-transfer\.png: /);
    assert.ok(!existsSync(join(dir, "mnist-interpolation.png")));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
