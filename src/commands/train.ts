/** `equivae train`: the flags, then train() (src/train/trainer.ts), which checks the data and the label budget. */
import { join } from "node:path";
import { BACKEND_CHOICES } from "../backend/names.js";
import { DEFAULT_VALIDATION_FRACTION, parseImageSize } from "../data/folder.js";
import { DATASET_NAMES } from "../data/load.js";
import { parseGaussianScale } from "../model/config.js";
import { InputError } from "../util/errors.js";
import { parseInteger, type CommandSpec, type FlagSpec, type FlagValues } from "../util/flags.js";
import { commandLine } from "./invocation.js";

/** --standardise: pixel, channel or off, and 'on' for pixel. */
function parseStandardise(s: string): "pixel" | "channel" | "off" {
  if (s === "on") return "pixel";
  if (s === "pixel" || s === "channel" || s === "off") return s;
  throw new InputError(`--standardise must be pixel, channel or off (got '${s}')`);
}

/** --labels: N labelled images, or all (undefined: supervised). */
function parseLabels(s: string): number | undefined {
  if (s === "all") return undefined;
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1)
    throw new InputError(`--labels must be a positive integer or 'all' (got '${s}')`);
  return n;
}

function parseUnlabelledContext(s: string, name: string): number | "all" {
  return s === "all" ? "all" : parseInteger(s, name, 1);
}

function parseFilters(s: string, name: string): number[] {
  return s.split(",").map((f) => parseInteger(f.trim(), name, 1));
}

export const TRAIN_FLAGS = [
  {
    flag: "dataset",
    kind: "enum",
    choices: DATASET_NAMES,
    arg: "NAME",
    dflt: "mnist",
    help: "mnist, fashion-mnist, svhn or folder",
  },
  {
    flag: "data-dir",
    kind: "string",
    arg: "DIR",
    dfltText: "$EQUIVAE_DATA_DIR, else the default source",
    help:
      "mnist/fashion-mnist: the IDX files (.gz or raw); svhn: train_32x32.mat and test_32x32.mat; " +
      "folder: ROOT with ROOT/<class name>/*.png|jpg (and optionally ROOT/test/<class>/)",
  },
  {
    flag: "image-size",
    kind: "string",
    parse: parseImageSize,
    arg: "HxW",
    dfltText: "the first image's size",
    help: "folder: resize every image to H x W, or N for N x N",
  },
  {
    flag: "channels",
    kind: "enum",
    choices: ["1", "3"],
    noun: "channel count",
    arg: "1|3",
    dfltText: "3 unless every image is grey",
    help: "folder: grey or colour",
  },
  {
    flag: "val-fraction",
    kind: "number",
    min: 0,
    below: 1,
    // The loader applies the default: the flag, when given, must be for an image folder.
    dfltText: String(DEFAULT_VALIDATION_FRACTION),
    help: "folder: fraction of each class held out for validation",
  },
  {
    flag: "likelihood",
    kind: "enum",
    choices: ["bernoulli", "gaussian"],
    arg: "NAME",
    dfltText: "gaussian for colour images, bernoulli for grey",
    help: "p(x | v, z): bernoulli or gaussian",
  },
  {
    flag: "gaussian-scale",
    kind: "string",
    parse: parseGaussianScale,
    arg: "S",
    dfltText: "learned",
    help:
      "gaussian: 'learned' (one log sigma per channel) or a fixed sigma, in standardised units when " +
      "standardising, else in pixel units",
  },
  {
    flag: "standardise",
    kind: "string",
    parse: parseStandardise,
    arg: "MODE",
    dfltText: "off for bernoulli; for gaussian, pixel on svhn as in the paper, channel otherwise",
    help:
      "pixel, channel or off ('on' = pixel): (x - mean) / std of the model's inputs inside the model, with " +
      "statistics of the training split per pixel and channel, or per channel pooled over positions; " +
      "stored in the checkpoint",
  },
  {
    flag: "out",
    kind: "string",
    arg: "DIR",
    dfltText: "runs/<dataset>",
    help: "checkpoint directory (refused if it exists, unless --resume)",
  },
  { flag: "epochs", kind: "int", dflt: 40, help: "epochs" },
  { flag: "dv", kind: "int", dflt: 16, help: "size of v" },
  { flag: "dz", kind: "int", dfltText: "same as dv", help: "size of z" },
  { flag: "hidden", kind: "int", dfltText: "128, 64 when dv <= 8", help: "dense hidden units H" },
  {
    flag: "filters",
    kind: "string",
    parse: parseFilters,
    arg: "A,B,C,D,E",
    dfltText: "16,16,32,32,64",
    help: "conv stack filters (5x5, strides 1,2,2,2,2); the total must stay under 1M parameters",
  },
  {
    flag: "n-max",
    kind: "int",
    dflt: 7,
    help:
      "context set size n ~ U{1..N}, drawn per step (the paper's 7; 1, v learnt from one other image " +
      "at a time, gave the lowest MNIST centroid error: 0.69% against 0.97%, seed 1)",
  },
  { flag: "batch-size", kind: "int", dflt: 32, help: "initial batch size" },
  {
    flag: "batch-double-every",
    kind: "int",
    min: 0,
    arg: "E",
    dflt: 10,
    help: "double the batch size every E epochs, 0 = never",
  },
  { flag: "max-batch-size", kind: "int", dflt: 256, help: "cap for the doubling" },
  {
    flag: "context-share",
    kind: "int",
    dflt: 1,
    help:
      "targets of one class sharing one context pool per step; 1 = every target draws its own set, as in " +
      "the paper (4 trains ~25% more images/s on tensorflow, ~60% on wasm, but reached 1.76% against " +
      "1.37% MNIST test error)",
  },
  { flag: "lr", kind: "number", over: 0, dflt: 0.001, help: "Adam learning rate" },
  {
    flag: "ema-decay",
    kind: "number",
    over: 0,
    below: 1,
    arg: "D",
    dfltText: "off",
    help:
      "evaluate, checkpoint and export an exponential moving average of the weights (e.g. 0.999); the raw " +
      "weights are kept for --resume, and their validation error is logged beside the average's",
  },
  { flag: "seed", kind: "int", min: 0, dflt: 1, help: "random seed" },
  {
    flag: "labels",
    kind: "string",
    parse: parseLabels,
    arg: "N|all",
    dfltText: "all",
    help:
      "label budget. N: semi-supervised (Eq. 5-7) with N/K labelled images per class, chosen with " +
      "--seed; the rest of the training split is used unlabelled. The paper: --dv 8, 20/25/30/35 epochs " +
      "for 100/600/1000/3000 labels",
  },
  {
    flag: "labelled-warmup-steps",
    kind: "int",
    min: 0,
    dfltText: "0",
    help: "with --labels: start with N labelled-only steps before U(x) joins",
  },
  {
    flag: "unlabelled-context",
    kind: "string",
    parse: parseUnlabelledContext,
    arg: "N|all",
    dfltText: "a pool of the step's n ~ U{1..n-max}",
    help: "with --labels: U(x)'s v_y from a pool of N labelled members of class y, or all of them",
  },
  { flag: "train-size", kind: "int", min: 0, dfltText: "all", help: "use only the first N training images" },
  { flag: "val-size", kind: "int", min: 0, dfltText: "all", help: "use only the first N validation images" },
  {
    flag: "backend",
    kind: "enum",
    choices: BACKEND_CHOICES,
    arg: "NAME",
    dfltText: "the fastest available",
    help:
      "tensorflow, tensorflow-gpu, tensorflow-cpu, wasm or cpu; tensorflow: @tensorflow/tfjs-node-gpu " +
      "when installed, else -node",
  },
  { flag: "resume", kind: "boolean", help: "continue the run in --out from its last completed epoch" },
  {
    flag: "no-keep-best",
    kind: "boolean",
    help: "do not keep the best-by-validation checkpoint in <out>-best (kept by default)",
  },
  { flag: "quiet", kind: "boolean", help: "no progress bar" },
] as const satisfies readonly FlagSpec[];

type TrainValues = FlagValues<typeof TRAIN_FLAGS>;

/** The flags that only make sense together, checked before any data is read. */
function checkCombinations(v: TrainValues): void {
  if (v["gaussian-scale"] !== undefined && v.likelihood === "bernoulli")
    throw new InputError("--gaussian-scale applies only to --likelihood gaussian");
  if (v.labels === undefined && v["labelled-warmup-steps"] !== undefined)
    throw new InputError("--labelled-warmup-steps needs --labels N (it is about semi-supervised runs)");
  if (v.labels === undefined && v["unlabelled-context"] !== undefined)
    throw new InputError("--unlabelled-context needs --labels N (it is about semi-supervised runs)");
}

/** train()'s options from the flags (unset optional flags stay undefined: their defaults apply). */
function trainOptions(v: TrainValues) {
  return {
    out: v.out ?? join("runs", v.dataset),
    epochs: v.epochs,
    dv: v.dv,
    dz: v.dz ?? v.dv,
    hidden: v.hidden,
    filters: v.filters,
    nMax: v["n-max"],
    batchSize: v["batch-size"],
    batchDoubleEvery: v["batch-double-every"],
    maxBatchSize: v["max-batch-size"],
    contextShare: v["context-share"],
    learningRate: v.lr,
    // Unset stays undefined so that runs made before the flag existed still resume.
    emaDecay: v["ema-decay"],
    seed: v.seed,
    resume: v.resume,
    keepBest: !v["no-keep-best"],
    quiet: v.quiet,
    command: commandLine(),
    labels: v.labels,
    // Unset stays undefined so that runs made before the flag existed still resume.
    labelledWarmupSteps: v["labelled-warmup-steps"],
    unlabelledContext: v["unlabelled-context"],
    ...(v.likelihood !== undefined ? { likelihood: v.likelihood } : {}),
    ...(v["gaussian-scale"] !== undefined ? { gaussianScale: v["gaussian-scale"] } : {}),
    ...(v.standardise !== undefined ? { standardise: v.standardise } : {}),
  };
}

async function run({ values: v }: { values: TrainValues }): Promise<void> {
  checkCombinations(v);
  // Data, class and label errors surface before the (slower, and on tfjs-node chatty) backend start.
  const { loadDataset } = await import("../data/load.js");
  const { data, loader } = await loadDataset({
    name: v.dataset,
    dataDir: v["data-dir"],
    trainSize: v["train-size"],
    valSize: v["val-size"],
    imageSize: v["image-size"],
    channels: v.channels === undefined ? undefined : v.channels === "1" ? 1 : 3,
    validationFraction: v["val-fraction"],
  });
  const options = trainOptions(v);
  const { selectRows } = await import("../train/run-setup.js");
  const rows = selectRows(data, options);
  const { initBackend, describeBackend } = await import("../backend/index.js");
  const backend = await initBackend(v.backend);
  console.log(describeBackend(backend));
  const { train } = await import("../train/trainer.js");
  // Every checkpoint carries its ONNX graphs, made from the weights in memory (train/ does not import export/).
  const { onnxFiles } = await import("../export/onnx.js");
  const r = await train(
    data,
    {
      ...options,
      deriveFiles: (snapshot) => onnxFiles(snapshot),
      backend: backend.name,
      device: backend.device,
      backendPackage: backend.package,
      ...(loader ? { datasetLoader: loader } : {}),
    },
    rows,
  );
  r.model.dispose();
}

export const command: CommandSpec<typeof TRAIN_FLAGS> = {
  name: "train",
  usage: "equivae train [options]",
  intro:
    "  Trains EquiVAE on a labelled dataset and writes a checkpoint (weights and ONNX graphs) into --out\n" +
    "  after every epoch, and the best-by-validation epoch into <out>-best.",
  flags: TRAIN_FLAGS,
  run,
};
