import { promises as fsp } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { ImageSet } from "../data/dataset.js";
import type { Engine } from "../inference/index.js";
import { readMetrics } from "../checkpoint/index.js";
import { errorMessage, UserError } from "../util/errors.js";
import { renderCurves } from "./curves.js";
import { interpolationCells, sampleCells, styleTransferCells } from "./figures.js";
import { renderGrid } from "./grid.js";
import type { Raster } from "./raster.js";

export const REPORT_USAGE = `equivae report <checkpoint> [options]

  Draws pictures of a trained model as PNG files in --out:
    <prefix>-samples.png         z ~ N(0, I) decoded with each class centroid: a column per class,
                                 a row per z (the same z along a row)
    <prefix>-interpolation.png   a row per class: two validation images at the ends, z moved
                                 linearly between theirs, decoded with the class centroid
    <prefix>-style-transfer.png  a row per validation image: the image, then its z decoded with
                                 every class centroid
    <prefix>-curves.png          -ELBO, reconstruction, KL and validation centroid error per epoch
                                 (from the checkpoint's metrics.jsonl)
  Without the dataset only the samples and the curves are drawn.

  --out DIR                 output directory (default: docs/figures)
  --data-dir DIR            where the dataset's IDX files are (default: $EQUIVAE_DATA_DIR, else as in training)
  --seed N                  seed for the sampled z and the chosen images (default: 1)
  --prefix NAME             file name prefix (default: the checkpoint's dataset name)`;

const USAGE_LINE =
  "usage: equivae report <checkpoint> [--out DIR] [--data-dir DIR] [--seed N] [--prefix NAME]";

export interface ReportOptions {
  out: string;
  dataDir?: string;
  seed: number;
  prefix?: string;
  /** Where to print progress lines (default: console.log). */
  log?: (line: string) => void;
}

export interface WrittenFile {
  path: string;
  bytes: number;
  width: number;
  height: number;
}

export interface ReportResult {
  files: WrittenFile[];
  /** Why the image-based pictures were skipped (undefined when they were drawn). */
  skipped?: string;
}

function parse(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      options: {
        out: { type: "string" },
        "data-dir": { type: "string" },
        seed: { type: "string" },
        prefix: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    throw new UserError(errorMessage(e).replace(/\. To specify a positional argument.*$/, ""));
  }
}

/** `equivae report <checkpoint> [--out DIR] [--data-dir DIR] [--seed N] [--prefix NAME]` */
export async function cmdReport(argv: string[]): Promise<void> {
  const { values: v, positionals } = parse(argv);
  if (v.help) return void console.log(REPORT_USAGE);
  if (positionals.length !== 1) throw new UserError(USAGE_LINE);
  let seed = 1;
  if (v.seed !== undefined) {
    seed = Number(v.seed);
    if (!/^\d+$/.test(v.seed) || !Number.isSafeInteger(seed) || seed > 0xffffffff) {
      throw new UserError(`--seed must be an integer from 0 to 4294967295 (got '${v.seed}')`);
    }
  }
  if (v.out === "") throw new UserError("--out must not be empty");
  await writeReport(positionals[0], {
    out: v.out ?? join("docs", "figures"),
    dataDir: v["data-dir"],
    seed,
    prefix: v.prefix,
  });
}

/** The validation split of the checkpoint's dataset, or the reason it cannot be read. */
async function loadValidation(engine: Engine, dataDir?: string): Promise<ImageSet | string> {
  const ds = engine.manifest.dataset;
  const { DATASET_NAMES, loadDataset, requestFor } = await import("../data/load.js");
  if (!(DATASET_NAMES as readonly string[]).includes(ds.name)) return `no loader for dataset '${ds.name}'`;
  try {
    const { data } = await loadDataset({ ...requestFor(ds, dataDir), trainSize: 0 });
    const c = engine.config;
    const val = data.validation;
    if (val.height !== c.height || val.width !== c.width || val.channels !== c.channels) {
      return `the data's images are ${val.height}x${val.width}x${val.channels}, the model's ${c.height}x${c.width}x${c.channels}`;
    }
    return val;
  } catch (e) {
    return errorMessage(e);
  }
}

function kib(n: number): string {
  return `${(n / 1024).toFixed(1)} KiB`;
}

/** Draws every picture of a checkpoint into opts.out (see REPORT_USAGE). */
export async function writeReport(checkpoint: string, opts: ReportOptions): Promise<ReportResult> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const dir = resolve(checkpoint);
  const prefix = opts.prefix;
  if (prefix !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(prefix)) {
    throw new UserError(
      `--prefix must be a plain file name prefix (letters, digits, . _ -), got '${prefix}'`,
    );
  }
  const { loadEngine } = await import("../inference/index.js");
  // One thread: the pictures must not depend on how the work is split.
  const engine = await loadEngine(dir, { threads: 1 });
  try {
    const c = engine.config;
    const name = prefix ?? engine.manifest.dataset.name.replace(/[^A-Za-z0-9._-]/g, "-");
    const out = resolve(opts.out);
    try {
      await fsp.mkdir(out, { recursive: true });
    } catch (e) {
      throw new UserError(`cannot create ${out}: ${errorMessage(e)}`);
    }
    const files: WrittenFile[] = [];
    const write = async (file: string, r: Raster, grey: boolean) => {
      const path = join(out, `${name}-${file}.png`);
      const png = r.toPng(grey);
      await fsp.writeFile(path, png);
      files.push({ path, bytes: png.length, width: r.width, height: r.height });
      log(`wrote ${path} (${kib(png.length)}, ${r.width}x${r.height})`);
    };
    const grid = { height: c.height, width: c.width, channels: c.channels };
    const grey = c.channels !== 3;

    const samples = await sampleCells(engine, opts.seed);
    await write("samples", renderGrid(samples.cells, grid), grey);

    const val = await loadValidation(engine, opts.dataDir);
    let skipped: string | undefined;
    if (typeof val === "string") {
      skipped = val;
    } else {
      const interp = await interpolationCells(engine, val, opts.seed);
      const style = await styleTransferCells(engine, val, opts.seed);
      if (interp.cells.length === 0 || style.cells.length === 0) {
        skipped = "the validation split has too few images per class";
      } else {
        const cols = interp.cells[0].length;
        await write("interpolation", renderGrid(interp.cells, { ...grid, wideAfter: [0, cols - 2] }), grey);
        await write("style-transfer", renderGrid(style.cells, { ...grid, wideAfter: [0] }), grey);
      }
    }

    const metrics = await readMetrics(dir);
    const epochs = metrics.length === 1 ? "1 epoch" : `${metrics.length} epochs`;
    let title = `Training curves: ${engine.manifest.dataset.name}, ${epochs}`;
    if (title.length > 70) title = title.slice(0, 67) + "...";
    await write("curves", renderCurves(metrics, title), false);

    if (skipped !== undefined)
      log(`skipped ${name}-interpolation.png and ${name}-style-transfer.png: ${skipped}`);
    return { files, skipped };
  } finally {
    await engine.dispose();
  }
}
