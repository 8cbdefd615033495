import { promises as fsp } from "node:fs";
import { basename, isAbsolute, join, resolve } from "node:path";
import type { ImageSet } from "../data/dataset.js";
import type { Engine } from "../inference/index.js";
import { readMetrics } from "../checkpoint/index.js";
import { errorMessage, InputError } from "../util/errors.js";
import { runCommand, type CommandSpec, type FlagSpec, type FlagValues } from "../util/flags.js";
import { renderCurves } from "./curves.js";
import {
  embedPoints,
  type EmbeddedPoints,
  INTERPOLATION_STEPS,
  interpolationCells,
  SAMPLE_ROWS,
  sampleCells,
  styleTransferCells,
  umapSeed,
  Z_GRID_RANGE,
  zGridCells,
  zGridValues,
} from "./figures.js";
import { renderGrid } from "./grid.js";
import { type IndexFigure, renderIndex } from "./html.js";
import type { Raster } from "./raster.js";
import { renderScatter } from "./scatter.js";
import { UMAP_NEIGHBOURS, umap2d } from "./umap.js";

/** The style-transfer grid's label of its first column (the style images). */
export const STYLE_INPUT_LABEL = "input";

export type ReportSplit = "validation" | "test";
export const REPORT_SPLITS: readonly ReportSplit[] = ["validation", "test"];
/** Images in the UMAP pictures by default: UMAP of both takes a few seconds. */
export const DEFAULT_UMAP_POINTS = 2000;
/** Fewest images UMAP runs on. */
export const MIN_UMAP_POINTS = 3;

export interface ReportOptions {
  out: string;
  dataDir?: string;
  seed: number;
  prefix?: string;
  /** The split the real images come from (default: validation). */
  split?: ReportSplit;
  /** Images in the UMAP pictures (default: DEFAULT_UMAP_POINTS). */
  umapPoints?: number;
  /** The z-grid's class: a class name, else an index (default: the first class with a centroid). */
  zClass?: string;
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
  /** The index.html written beside the pictures. */
  index: string;
  /** Why the pictures of real images were skipped (undefined when they were drawn). */
  skipped?: string;
  /** The z-grid's two dimensions and where they were chosen from (undefined when not drawn). */
  zGrid?: { class: number; dims: [number, number]; from: "manifest" | "computed" };
}

export const REPORT_FLAGS = [
  { flag: "out", kind: "string", arg: "DIR", dflt: join("docs", "figures"), help: "output directory" },
  {
    flag: "data-dir",
    kind: "string",
    arg: "DIR",
    dfltText: "$EQUIVAE_DATA_DIR, else as in training",
    help:
      "where the dataset's files are; without them only the samples, the curves and (with the manifest's " +
      "zActivity) the z-grid are drawn",
  },
  {
    flag: "split",
    kind: "enum",
    choices: REPORT_SPLITS,
    arg: "NAME",
    dflt: "validation",
    help: "validation or test: the real images, the UMAP points and the measured KL",
  },
  {
    flag: "umap-points",
    kind: "int",
    min: MIN_UMAP_POINTS,
    dflt: DEFAULT_UMAP_POINTS,
    help:
      "images in the UMAP pictures (two UMAPs of 2,000 points: ~3 s each), seeded random ones of the " +
      "split; also those the KL per z dimension is measured on without zActivity",
  },
  {
    flag: "z-class",
    kind: "string",
    arg: "NAME",
    dfltText: "the first class with a centroid",
    help: "the class whose centroid the z-grid decodes with: a class name, else an index",
  },
  {
    flag: "seed",
    kind: "int",
    min: 0,
    max: 0xffffffff,
    dflt: 1,
    help: "the sampled z, the chosen images, the UMAP points and UMAP's own random draws",
  },
  {
    flag: "prefix",
    kind: "string",
    arg: "NAME",
    dfltText: "the checkpoint's dataset name",
    help: "file name prefix",
  },
] as const satisfies readonly FlagSpec[];

type ReportArgs = { values: FlagValues<typeof REPORT_FLAGS>; positionals: string[] };

export const REPORT_COMMAND: CommandSpec<typeof REPORT_FLAGS> = {
  name: "report",
  usage: "equivae report <checkpoint> [options]",
  intro: `  Draws pictures of a trained model as PNG files in --out, and an index.html that shows them all:
    <prefix>-samples.png         z ~ N(0, I) decoded with each class centroid: a column per class
                                 (labelled with its name), a row per z (the same z along a row)
    <prefix>-interpolation.png   a row per class: two images at the ends, z moved linearly between
                                 theirs, decoded with the class centroid
    <prefix>-style-transfer.png  a row per image (labelled with its class): the image, then its z
                                 decoded with every class centroid (columns labelled)
    <prefix>-umap-v.png          UMAP of v of --umap-points images, coloured by class, with a legend
    <prefix>-umap-z.png          the same for z (mu of q(z | x, v)): v separates the classes, z should not
    <prefix>-z-grid.png          v fixed to a class centroid (--z-class), z = 0 except the two most
                                 active z dimensions, each from -2 to 2 (the manifest's zActivity when
                                 it is there, else the largest mean KL on the images)
    <prefix>-curves.png          -ELBO, reconstruction, KL and validation centroid error per epoch
                                 (from the checkpoint's metrics.jsonl)
    index.html                   every picture above with a caption (replaced by each report into --out)
  Real images come from --split. Without the dataset only the samples, the curves and (with the
  manifest's zActivity) the z-grid are drawn.`,
  flags: REPORT_FLAGS,
  positionals: 1,
  async run({ values: v, positionals }: ReportArgs) {
    await writeReport(positionals[0], {
      out: v.out,
      dataDir: v["data-dir"],
      seed: v.seed,
      prefix: v.prefix,
      split: v.split,
      umapPoints: v["umap-points"],
      zClass: v["z-class"],
    });
  },
};

/** `equivae report <checkpoint> [options]` (see REPORT_FLAGS). */
export function cmdReport(argv: string[]): Promise<void> {
  return runCommand(REPORT_COMMAND, argv);
}

/** A split of the checkpoint's dataset, or the reason it cannot be read. */
async function loadSplit(engine: Engine, split: ReportSplit, dataDir?: string): Promise<ImageSet | string> {
  const ds = engine.manifest.dataset;
  const { DATASET_NAMES, loadDataset, requestFor } = await import("../data/load.js");
  if (!(DATASET_NAMES as readonly string[]).includes(ds.name)) return `no loader for dataset '${ds.name}'`;
  try {
    const { data } = await loadDataset({
      ...requestFor(ds, dataDir),
      trainSize: 0,
      withTest: split === "test",
    });
    const c = engine.config;
    const set = split === "test" ? data.test : data.validation;
    if (!set) return `the dataset has no ${split} split`;
    if (set.height !== c.height || set.width !== c.width || set.channels !== c.channels) {
      return `the data's images are ${set.height}x${set.width}x${set.channels}, the model's ${c.height}x${c.width}x${c.channels}`;
    }
    if (set.n === 0) return `the ${split} split is empty`;
    return set;
  } catch (e) {
    return errorMessage(e);
  }
}

/** The z-grid's class: `want` as a class name, else as an index; default the first with a centroid. */
function zGridClass(engine: Engine, want: string | undefined): number {
  const { numClasses: K, dv } = engine.config;
  const hasCentroid = (y: number) => engine.centroids.subarray(y * dv, (y + 1) * dv).every(Number.isFinite);
  if (want === undefined) {
    for (let y = 0; y < K; y++) if (hasCentroid(y)) return y;
    return -1;
  }
  let y = engine.classNames.indexOf(want);
  if (y < 0 && /^\d+$/.test(want) && Number(want) < K) y = Number(want);
  if (y < 0) {
    const names = engine.classNames.slice(0, 12).join(", ") + (K > 12 ? ", ..." : "");
    throw new InputError(`--z-class: no class '${want}' (the classes are ${names}, or an index below ${K})`);
  }
  if (!hasCentroid(y)) throw new InputError(`--z-class: class '${engine.classNames[y]}' has no centroid`);
  return y;
}

function kib(n: number): string {
  return `${(n / 1024).toFixed(1)} KiB`;
}

/** A z-grid axis value as a label: "-2", "-1.5", "0", "0.5". */
function axisLabel(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(1);
}

/** "a", "a and b", "a, b and c". */
function listing(xs: string[]): string {
  return xs.length <= 1 ? xs.join("") : `${xs.slice(0, -1).join(", ")} and ${xs[xs.length - 1]}`;
}

/** Draws every picture of a checkpoint into opts.out (see REPORT_COMMAND's intro). */
export async function writeReport(checkpoint: string, opts: ReportOptions): Promise<ReportResult> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const dir = resolve(checkpoint);
  const prefix = opts.prefix;
  const split = opts.split ?? "validation";
  const umapPoints = opts.umapPoints ?? DEFAULT_UMAP_POINTS;
  if (prefix !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(prefix)) {
    throw new InputError(
      `--prefix must be a plain file name prefix (letters, digits, . _ -), got '${prefix}'`,
    );
  }
  const { loadEngine } = await import("../inference/index.js");
  const { klPerDim, manifestZActivity, mostActiveDims } = await import("./activity.js");
  // One thread: the pictures must not depend on how the work is split.
  const engine = await loadEngine(dir, { threads: 1 });
  try {
    const c = engine.config;
    const classNames = engine.classNames;
    const zClass = zGridClass(engine, opts.zClass);
    const name = prefix ?? engine.manifest.dataset.name.replace(/[^A-Za-z0-9._-]/g, "-");
    const out = resolve(opts.out);
    try {
      await fsp.mkdir(out, { recursive: true });
    } catch (e) {
      throw new InputError(`cannot create ${out}: ${errorMessage(e)}`);
    }
    const files: WrittenFile[] = [];
    const figures: IndexFigure[] = [];
    const fileName = (file: string) => `${name}-${file}.png`;
    const write = async (
      file: string,
      r: Raster,
      grey: boolean,
      fig: { title: string; caption: string; pixelated: boolean },
      note = "",
    ) => {
      const path = join(out, fileName(file));
      const png = r.toPng(grey);
      await fsp.writeFile(path, png);
      files.push({ path, bytes: png.length, width: r.width, height: r.height });
      figures.push({ file: fileName(file), width: r.width, height: r.height, ...fig });
      log(`wrote ${path} (${kib(png.length)}, ${r.width}x${r.height}${note})`);
    };
    const grid = { height: c.height, width: c.width, channels: c.channels };
    const grey = c.channels !== 3;
    const notes: string[] = [];
    const skip = (pictures: string[], why: string) => {
      const line = `skipped ${listing(pictures.map(fileName))}: ${why}`;
      notes.push(`Not drawn: ${listing(pictures.map(fileName))} (${why}).`);
      log(line);
    };

    const samples = await sampleCells(engine, opts.seed);
    await write("samples", renderGrid(samples.cells, { ...grid, colLabels: classNames }), grey, {
      title: "Prior samples per class",
      caption:
        `z ~ N(0, I) decoded with each class's centroid v: a column per class, ${SAMPLE_ROWS} z ` +
        "(one per row, the same z along a row). Along a row the class changes and the style stays.",
      pixelated: true,
    });

    const set = await loadSplit(engine, split, opts.dataDir);
    let skipped: string | undefined;
    let points: EmbeddedPoints | undefined;
    const imagePictures = ["interpolation", "style-transfer", "umap-v", "umap-z"];
    if (typeof set === "string") {
      skipped = set;
    } else {
      const interp = await interpolationCells(engine, set, opts.seed);
      const style = await styleTransferCells(engine, set, opts.seed);
      if (interp.cells.length === 0 || style.cells.length === 0) {
        skipped = `the ${split} split has too few images per class`;
      } else {
        const cols = interp.cells[0].length;
        await write(
          "interpolation",
          renderGrid(interp.cells, {
            ...grid,
            wideAfter: [0, cols - 2],
            rowLabels: interp.rows.map((r) => classNames[r.label]),
          }),
          grey,
          {
            title: "Interpolation in z, v fixed",
            caption:
              `A row per class: two ${split} images of the class at the ends; between them z moves ` +
              `linearly from the first image's to the second's in ${INTERPOLATION_STEPS} steps, decoded ` +
              "with the class centroid. Only the style changes, never the class.",
            pixelated: true,
          },
        );
        await write(
          "style-transfer",
          renderGrid(style.cells, {
            ...grid,
            wideAfter: [0],
            rowLabels: style.images.map((i) => classNames[set.labels[i]] ?? ""),
            colLabels: [STYLE_INPUT_LABEL, ...classNames],
          }),
          grey,
          {
            title: "Style transfer",
            caption:
              `A row per ${split} image (left, labelled with its class): its z (mu of q(z | x, v(x))) ` +
              "decoded with every class's centroid, one column per class.",
            pixelated: true,
          },
        );
      }
      points = await embedPoints(engine, set, opts.seed, umapPoints);
      if (points.idx.length < MIN_UMAP_POINTS) {
        skip(["umap-v", "umap-z"], `the ${split} split has ${points.idx.length} images`);
      } else {
        const n = points.idx.length;
        const what = `${split} split, ${n} images`;
        for (const space of ["v", "z"] as const) {
          const t0 = performance.now();
          const xy =
            space === "v"
              ? await umap2d(points.v, n, c.dv, umapSeed(opts.seed, "v"))
              : await umap2d(points.mu, n, c.dz, umapSeed(opts.seed, "z"));
          const secs = (performance.now() - t0) / 1000;
          const title = space === "v" ? `UMAP of v (${what})` : `UMAP of z (${what})`;
          await write(
            `umap-${space}`,
            renderScatter(xy, points.labels, classNames, title),
            false,
            {
              title: space === "v" ? "UMAP of the invariant v" : "UMAP of the equivariant z",
              caption:
                space === "v"
                  ? `UMAP (umap-js, ${UMAP_NEIGHBOURS} neighbours) of v of ${n} seeded random ${split} images, ` +
                    "coloured by class: v holds what a class has in common, so the classes form separate clusters."
                  : `UMAP of z (mu of q(z | x, v(x))) of the same ${n} images: z holds the style within a ` +
                    "class, so the classes overlap instead of separating.",
              pixelated: false,
            },
            `; UMAP of ${n} points in ${secs.toFixed(1)} s`,
          );
        }
      }
    }
    if (skipped !== undefined) skip(imagePictures.slice(0, typeof set === "string" ? 4 : 2), skipped);

    let zGrid: ReportResult["zGrid"];
    const fromManifest = manifestZActivity(engine.manifest, c.dz);
    const computedKl =
      points && points.idx.length > 0
        ? klPerDim(points.mu, points.logvar, points.idx.length, c.dz)
        : undefined;
    const choice = mostActiveDims(2, c.dz, fromManifest, computedKl);
    if (c.dz < 2) {
      skip(["z-grid"], `the model has ${c.dz} z dimension`);
    } else if (zClass < 0) {
      skip(["z-grid"], "no class has a centroid");
    } else if (!choice) {
      skip(["z-grid"], "no manifest zActivity and no images to measure the KL per z dimension on");
    } else {
      const dims: [number, number] = [choice.dims[0], choice.dims[1]];
      const cells = (await zGridCells(engine, zClass, dims))!;
      const labels = zGridValues().map(axisLabel);
      const cls = classNames[zClass];
      const kl = choice.klPerDim;
      const klText = kl ? ` (KL ${kl[dims[0]].toFixed(2)} and ${kl[dims[1]].toFixed(2)} nats)` : "";
      const source =
        choice.from === "manifest"
          ? `the manifest's zActivity${fromManifest?.split ? ` (${fromManifest.split} split)` : ""}`
          : `the mean KL per dimension on ${points!.idx.length} ${split} images`;
      await write(
        "z-grid",
        renderGrid(cells, {
          ...grid,
          colLabels: labels,
          rowLabels: labels,
          title: `class ${cls}: z[${dims[0]}] across, z[${dims[1]}] down`,
        }),
        grey,
        {
          title: `z-grid over the two most active z dimensions, class ${cls}`,
          caption:
            `v fixed to the centroid of class ${cls}; z = 0 except z[${dims[0]}] (columns) and ` +
            `z[${dims[1]}] (rows), each from -${Z_GRID_RANGE} to ${Z_GRID_RANGE}: the two z dimensions ` +
            `with the largest KL${klText}, from ${source}. The class stays, the style changes.`,
          pixelated: true,
        },
      );
      zGrid = { class: zClass, dims, from: choice.from };
    }

    const metrics = await readMetrics(dir);
    const epochs = metrics.length === 1 ? "1 epoch" : `${metrics.length} epochs`;
    let title = `Training curves: ${engine.manifest.dataset.name}, ${epochs}`;
    if (title.length > 70) title = title.slice(0, 67) + "...";
    await write("curves", renderCurves(metrics, title), false, {
      title: "Training curves",
      caption: `-ELBO, reconstruction, KL and validation nearest-centroid error per epoch (${epochs}, from metrics.jsonl).`,
      pixelated: false,
    });

    const index = join(out, "index.html");
    // The checkpoint as given (relative) or its folder name: no absolute paths in the page.
    const shown = isAbsolute(checkpoint) ? basename(dir) : checkpoint;
    const html = renderIndex({
      heading: `EquiVAE report: ${engine.manifest.dataset.name} (${shown})`,
      details: [
        `Model: ${c.numClasses} classes, ${c.height}x${c.width}x${c.channels} images, dv = ${c.dv}, dz = ${c.dz}.`,
        `Real images from the ${split} split; seed ${opts.seed}.`,
        `Drawn by: equivae report ${shown} --split ${split} --umap-points ${umapPoints} --seed ${opts.seed}` +
          (opts.zClass !== undefined ? ` --z-class ${opts.zClass}` : "") +
          (prefix !== undefined ? ` --prefix ${prefix}` : ""),
      ],
      figures,
      notes,
    });
    await fsp.writeFile(index, html);
    log(`wrote ${index} (${kib(Buffer.byteLength(html))}, ${figures.length} pictures)`);
    return { files, index, ...(skipped !== undefined ? { skipped } : {}), ...(zGrid ? { zGrid } : {}) };
  } finally {
    await engine.dispose();
  }
}
