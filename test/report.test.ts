import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { PNG } from "pngjs";
import { cmdReport, STYLE_INPUT_LABEL, writeReport } from "../src/report/command.js";
import { curvesLayout } from "../src/report/curves.js";
import {
  embedPoints,
  INTERPOLATION_STEPS,
  interpolationRows,
  SAMPLE_ROWS,
  styleImages,
  Z_GRID_STEPS,
  zGridValues,
} from "../src/report/figures.js";
import {
  CELL_GAP,
  CELL_SCALE,
  gridGeometry,
  type GridGeometry,
  type GridOptions,
  LABEL_INK,
  TITLE_SCALE,
  WIDE_GAP,
  wrapLabel,
} from "../src/report/grid.js";
import { klPerDim, manifestZActivity, mostActiveDims, rankByKl } from "../src/report/activity.js";
import { classColours, isSaturated, PALETTE, scatterLayout } from "../src/report/scatter.js";
import { GLYPH_HEIGHT, LINE_HEIGHT, textWidth } from "../src/report/font.js";
import { Raster } from "../src/report/raster.js";
import { loadIdxDataset } from "../src/data/mnist.js";
import { batchPixels, type ImageSet } from "../src/data/dataset.js";
import { loadEngine, type Engine } from "../src/inference/index.js";
import { InputError } from "../src/util/errors.js";
import { MNIST_DIR, ROOT, tempDir } from "./helpers/paths.js";

const MODEL = join(ROOT, "models", "mnist");
const SEED = 7;
const NAMES = ["samples", "interpolation", "style-transfer", "umap-v", "umap-z", "z-grid", "curves"];
const GRIDS = ["samples", "interpolation", "style-transfer", "z-grid"];
/** Few UMAP points keep the test fast (the default is 2,000). */
const POINTS = 300;
const K = 10;
const CLASS_NAMES = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
const H = 28;
const CELL = H * CELL_SCALE;

let out1: string;
let out2: string;
let logged: string[] = [];
let engine: Engine;
let val: ImageSet;
/** Each grid's layout options, as the report draws it. */
let gridOpts: Record<string, { rows: number; cols: number; o: GridOptions }>;

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

/** Grid size without labels: cells of CELL px, CELL_GAP between and around them, WIDE_GAP after `wide` columns. */
function gridSize(rows: number, cols: number, wide: number): { width: number; height: number } {
  return {
    width: CELL_GAP + cols * (CELL + CELL_GAP) + wide * (WIDE_GAP - CELL_GAP),
    height: CELL_GAP + rows * (CELL + CELL_GAP),
  };
}

function geometry(name: string): GridGeometry {
  const { rows, cols, o } = gridOpts[name];
  return gridGeometry(rows, cols, o);
}

/** The 28x28 image of a cell, read back from the PNG (one pixel per scaled block), in [0, 1]. */
function cell(png: PNG, g: GridGeometry, row: number, col: number): Float32Array {
  const x0 = g.colX[col];
  const y0 = g.rowY[row];
  const out = new Float32Array(H * H);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < H; x++) {
      const o = ((y0 + y * CELL_SCALE) * png.width + x0 + x * CELL_SCALE) * 4;
      out[y * H + x] = png.data[o] / 255;
    }
  }
  return out;
}

const rgbAt = (png: PNG, x: number, y: number): [number, number, number] => {
  const o = (y * png.width + x) * 4;
  return [png.data[o], png.data[o + 1], png.data[o + 2]];
};
const isInk = (c: readonly number[]) => c[0] + c[1] + c[2] < 3 * 128;

/**
 * Compares the box (x, y, w, h) of a PNG with `text` drawn by the font at (tx, ty) with the given
 * alignment: the same pixels are ink. Returns the number of ink pixels (asserting > 0).
 */
function assertText(
  png: PNG,
  box: { x: number; y: number; w: number; h: number },
  text: string,
  at: { x: number; y: number; scale: number; align: "left" | "center" | "right" },
  what: string,
): number {
  const want = new Raster(png.width, png.height);
  want.text(at.x, at.y, text, LABEL_INK, at.scale, at.align);
  let ink = 0;
  for (let y = box.y; y < box.y + box.h; y++) {
    for (let x = box.x; x < box.x + box.w; x++) {
      const got = isInk(rgbAt(png, x, y));
      assert.equal(got, isInk(want.get(x, y)), `${what}: pixel ${x},${y} is not the text '${text}'`);
      if (got) ink++;
    }
  }
  assert.ok(ink > 0, `${what}: no text pixels`);
  return ink;
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

/** The z-grid's two dimensions as the report chooses them (manifest zActivity, else KL on the points). */
let zDims: [number, number];
let zKl: number[];

before(async () => {
  out1 = tempDir("equivae-report-");
  out2 = tempDir("equivae-report-");
  logged = await run([
    MODEL,
    "--out",
    out1,
    "--data-dir",
    MNIST_DIR,
    "--seed",
    String(SEED),
    "--umap-points",
    String(POINTS),
  ]);
  engine = await loadEngine(MODEL, { threads: 1 });
  val = loadIdxDataset("mnist", { dataDir: MNIST_DIR, trainSize: 0 }).validation;
  const pts = await embedPoints(engine, val, SEED, POINTS);
  zKl = klPerDim(pts.mu, pts.logvar, pts.idx.length, engine.config.dz);
  const choice = mostActiveDims(
    2,
    engine.config.dz,
    manifestZActivity(engine.manifest, engine.config.dz),
    zKl,
  )!;
  zDims = [choice.dims[0], choice.dims[1]];
  const cellSize = { height: H, width: H, channels: 1 };
  const values = zGridValues().map((x) => (Number.isInteger(x) ? String(x) : x.toFixed(1)));
  gridOpts = {
    samples: { rows: SAMPLE_ROWS, cols: K, o: { ...cellSize, colLabels: CLASS_NAMES } },
    interpolation: {
      rows: K,
      cols: INTERPOLATION_STEPS + 2,
      o: { ...cellSize, wideAfter: [0, INTERPOLATION_STEPS], rowLabels: CLASS_NAMES },
    },
    "style-transfer": {
      rows: K,
      cols: K + 1,
      o: {
        ...cellSize,
        wideAfter: [0],
        rowLabels: styleImages(engine, val, SEED).map((i) => CLASS_NAMES[val.labels[i]]),
        colLabels: [STYLE_INPUT_LABEL, ...CLASS_NAMES],
      },
    },
    "z-grid": {
      rows: Z_GRID_STEPS,
      cols: Z_GRID_STEPS,
      o: {
        ...cellSize,
        colLabels: values,
        rowLabels: values,
        title: `class 0: z[${zDims[0]}] across, z[${zDims[1]}] down`,
      },
    },
  };
});

after(async () => {
  await engine?.dispose();
  for (const d of [out1, out2]) if (d) rmSync(d, { recursive: true, force: true });
});

test("report writes the PNGs with their layouts' sizes and index.html, and prints each with its size", () => {
  for (const n of NAMES) assert.ok(existsSync(join(out1, `mnist-${n}.png`)), n);
  assert.equal(logged.length, NAMES.length + 1, logged.join("\n"));
  for (const [i, n] of NAMES.entries())
    assert.match(logged[i], new RegExp(`mnist-${n}\\.png \\(\\d+\\.\\d KiB, \\d+x\\d+[;)]`));
  assert.match(logged[3], new RegExp(`UMAP of ${POINTS} points in \\d+\\.\\d s\\)$`));
  assert.match(logged[NAMES.length], /index\.html \(\d+\.\d KiB, 7 pictures\)$/);
  const scatter = scatterLayout(CLASS_NAMES);
  const expect: Record<string, { width: number; height: number }> = {
    "umap-v": { width: scatter.width, height: scatter.height },
    "umap-z": { width: scatter.width, height: scatter.height },
    curves: { width: curvesLayout().width, height: curvesLayout().height },
  };
  for (const n of GRIDS) {
    const g = geometry(n);
    expect[n] = { width: g.width, height: g.height };
  }
  for (const n of NAMES) {
    const png = read(out1, n);
    assert.deepEqual({ width: png.width, height: png.height }, expect[n], n);
    assert.ok(variance(png) > 100, `${n} is blank`);
  }
  // The labels add margins to the unlabelled grids: a header of one line of scale-2 digits above
  // the samples, a margin of one scale-2 digit left of the interpolation.
  const header = LINE_HEIGHT * 2 + 4;
  assert.deepEqual(expect.samples, { width: 582, height: 466 + header });
  assert.deepEqual(gridSize(SAMPLE_ROWS, K, 0), { width: 582, height: 466 });
  const interp = gridSize(K, INTERPOLATION_STEPS + 2, 2);
  assert.deepEqual(expect.interpolation, {
    width: interp.width + textWidth("0", 2) + 8,
    height: interp.height,
  });
});

test("samples: every row's cells differ between classes (same z, different centroid)", () => {
  const png = read(out1, "samples");
  const g = geometry("samples");
  for (let r = 0; r < SAMPLE_ROWS; r++) {
    for (let y = 1; y < K; y++) {
      const d = meanAbsDiff(cell(png, g, r, y - 1), cell(png, g, r, y));
      assert.ok(d > 0.03, `row ${r}: classes ${y - 1} and ${y} look the same (${d})`);
    }
  }
  // Digits are bright strokes on dark: not all ink, not all background.
  const c = cell(png, g, 0, 0);
  const ink = c.filter((p) => p > 0.5).length / c.length;
  assert.ok(ink > 0.03 && ink < 0.5, `ink fraction ${ink}`);
});

/** Checks every column and row label of a grid PNG against the font's rendering of the text. */
function assertGridLabels(name: string): void {
  const png = read(out1, name);
  const g = geometry(name);
  const { o } = gridOpts[name];
  const headerTop = g.titleHeight;
  (o.colLabels ?? []).forEach((label, j) => {
    const lines = wrapLabel(label, g.cellWidth + CELL_GAP, g.colLabelScale);
    assert.deepEqual(lines, [label], `${name}: column label '${label}' fits on one line`);
    // The column's header: from the title band down to the cells, the column's width.
    assertText(
      png,
      { x: g.colX[j], y: headerTop, w: g.cellWidth, h: g.top - headerTop },
      label,
      { x: g.colX[j] + g.cellWidth / 2, y: g.colLabelTop, scale: g.colLabelScale, align: "center" },
      `${name} column ${j}`,
    );
  });
  (o.rowLabels ?? []).forEach((label, i) => {
    assertText(
      png,
      { x: 0, y: g.rowY[i], w: g.left, h: g.cellHeight },
      label,
      {
        x: g.rowLabelRight,
        y: g.rowY[i] + (g.cellHeight - GLYPH_HEIGHT * g.rowLabelScale) / 2,
        scale: g.rowLabelScale,
        align: "right",
      },
      `${name} row ${i}`,
    );
  });
  if (o.title) {
    assertText(
      png,
      { x: 0, y: 0, w: png.width, h: g.titleHeight },
      o.title,
      { x: 4, y: 4, scale: TITLE_SCALE, align: "left" },
      `${name} title`,
    );
  }
}

test("labels: class names above the samples' columns and the style transfer's, beside the rows", () => {
  assert.equal(geometry("samples").colLabelScale, 2);
  assert.equal(geometry("style-transfer").colLabelScale, 2);
  assert.ok(geometry("samples").top > 0 && geometry("samples").left === 0);
  assert.ok(geometry("style-transfer").top > 0 && geometry("style-transfer").left > 0);
  // The style images are one per class, in class order: the row labels are 0..9.
  assert.deepEqual(gridOpts["style-transfer"].o.rowLabels, CLASS_NAMES);
  for (const n of GRIDS) assertGridLabels(n);
});

test("labels: long class names wrap onto two lines and are cut past that", () => {
  const w = CELL + CELL_GAP;
  assert.deepEqual(wrapLabel("T-shirt/top", w, 1), ["T-shirt/", "top"]);
  assert.deepEqual(wrapLabel("Ankle boot", w, 1), ["Ankle", "boot"]);
  assert.deepEqual(wrapLabel("Bag", w, 2), ["Bag"]);
  const long = wrapLabel("A very long class name indeed", w, 1);
  assert.equal(long.length, 2);
  for (const l of long) assert.ok(textWidth(l, 1) <= w, l);
  assert.match(long[1], /\.$/);
});

test("style transfer: the original first, then one column per class that differ from each other", () => {
  const png = read(out1, "style-transfer");
  const g = geometry("style-transfer");
  for (let r = 0; r < 10; r++) {
    for (let y = 2; y <= K; y++) {
      const d = meanAbsDiff(cell(png, g, r, y - 1), cell(png, g, r, y));
      assert.ok(d > 0.03, `row ${r}: classes ${y - 2} and ${y - 1} look the same (${d})`);
    }
  }
});

test("interpolation rows start at decode(centroid, z_a) and end at decode(centroid, z_b)", async () => {
  const png = read(out1, "interpolation");
  const g = geometry("interpolation");
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
      const got = cell(png, g, r, col);
      assert.ok(meanAbsDiff(got, want) < 0.01, `row ${r} col ${col}: ${meanAbsDiff(got, want)}`);
    }
    // The real images at the row's ends, exactly.
    assert.ok(meanAbsDiff(cell(png, g, r, 0), x.subarray(0, H * H)) < 1e-6);
    assert.ok(meanAbsDiff(cell(png, g, r, INTERPOLATION_STEPS + 1), x.subarray(H * H)) < 1e-6);
    // The two ends differ: the row shows a change of style.
    const first = cell(png, g, r, 1);
    const last = cell(png, g, r, INTERPOLATION_STEPS);
    assert.ok(meanAbsDiff(first, last) > 0.01, `row ${r}: no change along the interpolation`);
  }
});

/** Distinct saturated (class) colours inside a rectangle of a PNG, as "r,g,b" keys with pixel counts. */
function classColoursIn(png: PNG, box: { x: number; y: number; w: number; h: number }): Map<string, number> {
  const out = new Map<string, number>();
  for (let y = box.y; y < box.y + box.h; y++) {
    for (let x = box.x; x < box.x + box.w; x++) {
      const c = rgbAt(png, x, y);
      if (isSaturated(c)) out.set(c.join(","), (out.get(c.join(",")) ?? 0) + 1);
    }
  }
  return out;
}

test("UMAP pictures: one palette colour per class in the plot, and a legend with every class's swatch and name", () => {
  const layout = scatterLayout(CLASS_NAMES);
  const colours = classColours(K).map((c) => c.join(","));
  assert.deepEqual(
    colours,
    PALETTE.slice(0, K).map((c) => c.join(",")),
  );
  assert.equal(new Set(colours).size, K);
  for (const space of ["v", "z"]) {
    const png = read(out1, `umap-${space}`);
    // The whole picture has exactly K class colours, and each of them is in the plot.
    const all = classColoursIn(png, { x: 0, y: 0, w: png.width, h: png.height });
    assert.deepEqual([...all.keys()].sort(), [...colours].sort(), `umap-${space}: colours`);
    const plot = classColoursIn(png, layout.plot);
    for (const c of colours)
      assert.ok((plot.get(c) ?? 0) >= 20, `umap-${space}: class colour ${c} in the plot`);
    // The legend: each class's swatch filled with its colour, and its name beside it.
    assert.equal(layout.items.length, K);
    for (const [k, it] of layout.items.entries()) {
      const sw = classColoursIn(png, it.swatch);
      assert.deepEqual([...sw.entries()], [[colours[k], it.swatch.w * it.swatch.h]], `swatch ${k}`);
      assertText(
        png,
        {
          x: it.textX - 2,
          y: it.textY - 2,
          w: textWidth(it.text, layout.legendScale) + 4,
          h: 7 * layout.legendScale + 4,
        },
        CLASS_NAMES[k],
        { x: it.textX, y: it.textY, scale: layout.legendScale, align: "left" },
        `umap-${space} legend ${k}`,
      );
    }
    // No class colour in the legend besides the swatches.
    const legend = classColoursIn(png, layout.legend);
    assert.equal(
      [...legend.values()].reduce((a, b) => a + b, 0),
      K * layout.items[0].swatch.w * layout.items[0].swatch.h,
    );
  }
});

test("UMAP pictures: v clusters by class, z does not (same-colour neighbours in the picture)", () => {
  // Of the pairs of class-coloured pixels D = 6 px apart (across and down; a point is 5 px wide, so
  // mostly two points) in the plot, the fraction of the same colour: high when the classes form
  // separate clusters, near 1/K when they mix.
  const layout = scatterLayout(CLASS_NAMES);
  const purity = (png: PNG) => {
    let same = 0;
    let total = 0;
    const { x, y, w, h } = layout.plot;
    for (let yy = y + 6; yy < y + h - 6; yy++) {
      for (let xx = x + 6; xx < x + w - 6; xx++) {
        const c = rgbAt(png, xx, yy);
        if (!isSaturated(c)) continue;
        for (const [dx, dy] of [
          [6, 0],
          [-6, 0],
          [0, 6],
          [0, -6],
        ]) {
          const n = rgbAt(png, xx + dx, yy + dy);
          if (!isSaturated(n)) continue;
          total++;
          if (n[0] === c[0] && n[1] === c[1] && n[2] === c[2]) same++;
        }
      }
    }
    return same / total;
  };
  const pv = purity(read(out1, "umap-v"));
  const pz = purity(read(out1, "umap-z"));
  assert.ok(pv > 0.9, `v: ${pv}`);
  assert.ok(pz < 0.5, `z: ${pz}`);
});

test("z-grid: the two most active z dimensions, decoded with class 0's centroid", async () => {
  // The shipped model uses 3 of its 16 z dimensions; the grid's are two of them.
  const ranked = rankByKl(zKl);
  assert.ok(zKl[zDims[0]] > 0.5 && zKl[zDims[1]] > 0.5, `KL ${zKl[zDims[0]]}, ${zKl[zDims[1]]}`);
  assert.deepEqual(new Set(zDims), new Set(ranked.slice(0, 2)));
  const png = read(out1, "z-grid");
  const g = geometry("z-grid");
  const { dv, dz } = engine.config;
  const values = zGridValues();
  assert.equal(values.length, Z_GRID_STEPS);
  assert.deepEqual([values[0], values[Z_GRID_STEPS - 1]], [-2, 2]);
  const corners: Array<[number, number]> = [
    [0, 0],
    [0, Z_GRID_STEPS - 1],
    [Z_GRID_STEPS - 1, 0],
    [4, 4],
  ];
  const c = engine.centroids.slice(0, dv);
  for (const [i, j] of corners) {
    const z = new Float32Array(dz);
    z[zDims[0]] = values[j];
    z[zDims[1]] = values[i];
    const want = await engine.decode(c, z, 1);
    const d = meanAbsDiff(cell(png, g, i, j), want);
    assert.ok(d < 0.01, `cell ${i},${j}: ${d}`);
  }
  // Both directions change the picture.
  assert.ok(meanAbsDiff(cell(png, g, 4, 0), cell(png, g, 4, Z_GRID_STEPS - 1)) > 0.03);
  assert.ok(meanAbsDiff(cell(png, g, 0, 4), cell(png, g, Z_GRID_STEPS - 1, 4)) > 0.03);
});

test("active z dimensions: the manifest's zActivity ranked by its KL, else the KL computed here", () => {
  const kl = [0.01, 3, 0, 2.5, 0.2];
  assert.deepEqual(rankByKl(kl), [1, 3, 4, 0, 2]);
  const mu = Float32Array.from([1, 0, -1, 0]);
  const logvar = Float32Array.from([0, Math.log(4), 0, Math.log(4)]);
  const k = klPerDim(mu, logvar, 2, 2);
  assert.ok(Math.abs(k[0] - 0.5) < 1e-9);
  assert.ok(Math.abs(k[1] - 0.5 * (4 - 1 - Math.log(4))) < 1e-6);
  const m = {
    zActivity: { split: "validation", n: 5000, klPerDim: kl, thresholdNats: 0.1, activeDims: [4, 1, 3] },
  };
  const za = manifestZActivity(m, 5)!;
  assert.deepEqual(mostActiveDims(2, 5, za, undefined), { dims: [1, 3], from: "manifest", klPerDim: kl });
  // The manifest wins over the computed KL.
  assert.deepEqual(mostActiveDims(2, 5, za, [9, 0, 0, 0, 8])!.dims, [1, 3]);
  // One active dimension: the next by KL completes the pair.
  const one = manifestZActivity({ zActivity: { klPerDim: kl, activeDims: [3] } }, 5)!;
  assert.deepEqual(mostActiveDims(2, 5, one, undefined)!.dims, [3, 1]);
  // Without klPerDim: its own order.
  assert.deepEqual(
    mostActiveDims(2, 5, manifestZActivity({ zActivity: { activeDims: [4, 0] } }, 5), undefined)!.dims,
    [4, 0],
  );
  // No zActivity, or a malformed one: the computed KL.
  for (const bad of [
    {},
    null,
    { zActivity: { activeDims: [7] } },
    { zActivity: { activeDims: [1, 1] } },
    { zActivity: 3 },
  ]) {
    assert.equal(manifestZActivity(bad, 5), undefined);
  }
  assert.deepEqual(mostActiveDims(2, 5, undefined, kl), { dims: [1, 3], from: "computed", klPerDim: kl });
  assert.equal(mostActiveDims(2, 5, undefined, undefined), undefined);
});

test("index.html shows every picture with a caption, and loads nothing from elsewhere", () => {
  const html = readFileSync(join(out1, "index.html"), "utf8");
  const srcs = [...html.matchAll(/<img src="([^"]+)"/g)].map((m) => m[1]);
  assert.deepEqual(
    srcs,
    NAMES.map((n) => `mnist-${n}.png`),
  );
  assert.equal((html.match(/<figcaption>/g) ?? []).length, NAMES.length);
  assert.doesNotMatch(html, /(src|href)="(https?:|\/\/|\/)/);
  assert.doesNotMatch(html, /<script|<link|@import|url\(/i);
  assert.ok(!html.includes(ROOT), "no absolute paths");
  assert.match(html, /<title>EquiVAE report: mnist/);
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
  await assert.rejects(cmdReport([MODEL, "--bogus"]), InputError);
  await assert.rejects(cmdReport([]), InputError);
  await assert.rejects(cmdReport([MODEL, "extra"]), InputError);
  await assert.rejects(cmdReport([MODEL, "--seed", "x"]), InputError);
  await assert.rejects(cmdReport([MODEL, "--seed"]), InputError);
  await assert.rejects(cmdReport([MODEL, "--prefix", "../evil", "--out", out2]), InputError);
  await assert.rejects(cmdReport([MODEL, "--split", "train"]), /unknown split 'train'/);
  await assert.rejects(
    cmdReport([MODEL, "--umap-points", "2"]),
    /--umap-points must be an integer of at least 3/,
  );
  await assert.rejects(cmdReport([MODEL, "--umap-points", "1e3"]), InputError);
  await assert.rejects(cmdReport([MODEL, "--z-class", "cat", "--out", out2]), /--z-class: no class 'cat'/);
});

test("the same seed gives byte-identical files; another seed and split give other pictures", async () => {
  const argv = ["--data-dir", MNIST_DIR, "--umap-points", String(POINTS)];
  await run([MODEL, "--out", out2, ...argv, "--seed", String(SEED)]);
  for (const n of [...NAMES.map((x) => `mnist-${x}.png`), "index.html"]) {
    const a = readFileSync(join(out1, n));
    const b = readFileSync(join(out2, n));
    assert.ok(a.equals(b), `${n} differs between two runs with the same seed`);
  }
  const lines = await run([
    MODEL,
    "--out",
    out2,
    ...argv,
    "--seed",
    String(SEED + 1),
    "--prefix",
    "other",
    "--split",
    "test",
    "--z-class",
    "7",
  ]);
  assert.ok(lines.some((l) => l.includes("other-umap-v.png")));
  for (const n of ["samples", "umap-v", "umap-z", "z-grid"]) {
    const a = readFileSync(join(out1, `mnist-${n}.png`));
    const b = readFileSync(join(out2, `other-${n}.png`));
    assert.ok(!a.equals(b), `${n}: the same picture for another seed, split or class`);
  }
  // index.html now shows the last report's pictures.
  assert.match(readFileSync(join(out2, "index.html"), "utf8"), /src="other-umap-v\.png"/);
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
    // The z-grid needs the active z dimensions: from the manifest when it records them.
    const zFromManifest = manifestZActivity(engine.manifest, engine.config.dz) !== undefined;
    const drawn = ["samples", ...(zFromManifest ? ["z-grid"] : []), "curves"];
    assert.deepEqual(
      r.files.map((f) => f.path),
      drawn.map((n) => join(dir, `mnist-${n}.png`)),
    );
    assert.ok(r.skipped);
    assert.equal(r.index, join(dir, "index.html"));
    const skippedLines = lines.filter((l) => l.startsWith("skipped "));
    assert.equal(skippedLines.length, zFromManifest ? 1 : 2, lines.join("\n"));
    assert.match(
      skippedLines[0],
      /^skipped mnist-interpolation\.png, mnist-style-transfer\.png, mnist-umap-v\.png and mnist-umap-z\.png: /,
    );
    if (!zFromManifest) assert.match(skippedLines[1], /^skipped mnist-z-grid\.png: no manifest zActivity/);
    assert.ok(!existsSync(join(dir, "mnist-interpolation.png")));
    const html = readFileSync(join(dir, "index.html"), "utf8");
    assert.deepEqual(
      [...html.matchAll(/<img src="([^"]+)"/g)].map((m) => m[1]),
      drawn.map((n) => `mnist-${n}.png`),
    );
    assert.match(html, /Not drawn: mnist-interpolation\.png/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
