#!/usr/bin/env node
import { parseArgs, type ParseArgsConfig } from "node:util";
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { reportError } from "./commands/exit-codes.js";
import { InputError, errorMessage } from "./util/errors.js";

const USAGE = `equivae <command> [options]

Commands:
  train   Train EquiVAE on a labelled dataset; writes a checkpoint directory after every epoch.
  eval    Evaluate a checkpoint: nearest-centroid, neural-on-v and benchmark classifier errors
          (and q(y|x) for semi-supervised checkpoints).
  export  Write a checkpoint's ONNX graphs (for ONNX Runtime inference) beside its weights.
  embed   Embed a dataset of unlabelled images (IDX, image directory, NDJSON) into .npy or NDJSON.
  serve   Serve a checkpoint over HTTP (embeddings, classification, generation; see /docs).
  report  Draw a checkpoint's pictures: prior samples per class, interpolations, style transfer,
          UMAP of v and z, a z-grid, curves, and an index.html of them all.
  make-shapes  Write a small seeded colour image-folder dataset (circles, squares, triangles).

Run 'equivae <command> --help' for the options of a command.`;

const TRAIN_USAGE = `equivae train [options]

  --dataset NAME            mnist | fashion-mnist | svhn | folder (default: mnist)
  --data-dir DIR            mnist/fashion-mnist: the IDX files (else $EQUIVAE_DATA_DIR, else the default
                            source); svhn: train_32x32.mat and test_32x32.mat (else $EQUIVAE_DATA_DIR);
                            folder: ROOT with ROOT/<class name>/*.png|jpg (and optionally ROOT/test/<class>/)
  --image-size HxW          folder: resize every image to H x W, or N for N x N (default: the first image's size)
  --channels 1|3            folder: grey or colour (default: 3 unless every image is grey)
  --val-fraction X          folder: fraction of each class held out for validation (default: 0.1)
  --likelihood NAME         bernoulli | gaussian (default: gaussian for colour images, bernoulli for grey)
  --gaussian-scale S        gaussian: 'learned' (one log sigma per channel) or a fixed sigma, in standardised
                            units when standardising, else in pixel units (default: learned)
  --standardise MODE        pixel | channel | off: (x - mean) / std of the model's inputs inside the model, with
                            statistics of the training split per pixel and channel, or per channel pooled over
                            positions; stored in the checkpoint (default: off for bernoulli; for gaussian,
                            pixel on svhn as in the paper, channel otherwise). 'on' = pixel
  --out DIR                 checkpoint directory (default: runs/<dataset>)
  --epochs N                epochs (default: 40)
  --dv N / --dz N           sizes of v and z (default: 16 / same as dv)
  --hidden N                dense hidden units H (default: 128, 64 when dv <= 8)
  --filters A,B,C,D,E       conv filters (default: 16,16,32,32,64)
  --n-max N                 context set size n ~ U{1..N} per step (default: 7)
  --batch-size N            initial batch size (default: 32)
  --batch-double-every E    double the batch size every E epochs, 0 = never (default: 10)
  --max-batch-size N        cap for the doubling (default: 256)
  --context-share N         targets of one class sharing one context pool per step; 1 = every target draws
                            its own set, as in the paper (default: 1; 4 trains ~25% more images/s on
                            tensorflow, ~60% on wasm, but reached 1.76% against 1.37% MNIST test error)
  --lr X                    Adam learning rate (default: 0.001)
  --seed N                  random seed (default: 1)
  --labels N|all            label budget (default: all). N: semi-supervised (Eq. 5-7) with N/K labelled
                            images per class, chosen with --seed; the rest of the training split is used
                            unlabelled. The paper: --dv 8, 20/25/30/35 epochs for 100/600/1000/3000 labels
  --labelled-warmup-steps N with --labels: start with N labelled-only steps before U(x) joins (default: 0)
  --unlabelled-context N|all with --labels: U(x)'s v_y from a pool of N labelled members of class y, or
                            all of them (default: a pool of the step's n ~ U{1..n-max})
  --train-size N            use only the first N training images (quick runs)
  --val-size N              use only the first N validation images
  --backend NAME            tensorflow | tensorflow-gpu | tensorflow-cpu | wasm | cpu (default: the fastest
                            available); tensorflow: @tensorflow/tfjs-node-gpu when installed, else -node
  --resume                  continue the run in --out from its last completed epoch
  --no-keep-best            do not keep the best-by-validation checkpoint in <out>-best (kept by default)
  --quiet                   no progress bar`;

const EVAL_USAGE = `equivae eval <checkpoint> [options]

  --split NAME              test | validation (default: test)
  --data-dir DIR            where the dataset's files are (IDX, SVHN .mat, or the image folder ROOT;
                            default: as in training). Image folders: the test split is ROOT/test/<class>/
  --v-epochs N              epochs of the neural classifier on v, 0 = skip (default: 20; 200 for a
                            semi-supervised checkpoint, whose classifiers train on its few labelled rows)
  --benchmark-epochs N      epochs of the benchmark classifier, 0 = skip (default: 5; 200 for a
                            semi-supervised checkpoint)
  --train-size N            training images for the classifiers (default: as the checkpoint)
  --limit N                 evaluate only the first N images of the split
  --out FILE                where to write the JSON result (default: <checkpoint>/eval.json)
  --seed N                  seed of the two classifiers' initial weights, dropout and shuffling (default: 1)
  --record                  also record the result in the checkpoint's manifest.json ('evaluation', and
                            'zActivity': the mean KL per z dimension on the validation split; both shown
                            by GET /v1/models); the checkpoint's files and their sha256 are not touched
  --backend NAME            tensorflow | wasm | cpu (default: the fastest available)`;

const EXPORT_USAGE = `equivae export <checkpoint>

  Writes invariant.onnx, invariant_set.onnx, equivariant.onnx and decoder.onnx (opset 13, NHWC
  float32 images in [0, 1], dynamic batch) from the checkpoint's weights, records their sha256 and
  signatures in its manifest.json, and checks that ONNX Runtime loads them. Training does not
  export: run this again after training writes a new checkpoint.`;

const EMBED_USAGE = `equivae embed --input PATH --output PATH [options]
       equivae embed merge --output PATH PART...   (join the parts of a sharded run; --help)

  --input PATH              IDX file (.gz or raw), directory of PNG/JPEG (recursive), or NDJSON
  --format F                idx | dir | ndjson (default: from the input's type, name or first bytes)
  --output PATH             out.npy (float32 [N, d] .npy files + out.npy.ids.txt) or out.ndjson
  --output-format F         npy | ndjson (default: from the output's extension)
  --what LIST               representations, comma-separated: v,mu,logvar,class (default: all);
                            .npy: one file each, out.<rep>.npy (just out.npy when only one);
                            class = the class probabilities [N, K]
  --model DIR               checkpoint (default: the shipped models/mnist)
  --batch-size N            images per engine call (default: 256)
  --engine NAME             auto | onnx | tfjs (default: auto)
  --workers N               onnx: inference worker threads, one batch each at a time, results
                            written in input order (default: the cores; $EQUIVAE_WORKERS)
  --threads N               ONNX Runtime intra-op threads per worker (default: 1)
  --device D                cpu | cuda: ONNX Runtime's CUDA execution provider, onnx engine (default: cpu;
                            $EQUIVAE_DEVICE; README: GPU)
  --resume                  continue an interrupted run from <output>.progress.json
  --force                   overwrite existing outputs (and drop an interrupted run's state)
  --checkpoint-secs S       minimum seconds between resume checkpoints; 0 = every batch (default: 1)
  --shard I/N               embed only shard I (0-based) of N: a contiguous range of whole batches of
                            the input's records (the same input, model and options for every shard);
                            writes <output>.shard.json when done; join the parts with 'embed merge'
  --stats                   print a JSON line with counts, timing and peak memory (VmHWM) at the end
  --quiet                   no progress bar

  Unreadable images are skipped, listed on stderr and in <output>.skipped.txt.`;

const EMBED_MERGE_USAGE = `equivae embed merge --output PATH PART...

  Joins the outputs of the N shards of 'equivae embed --shard I/N' into exactly the files one
  unsharded run writes (.npy files with their .ids.txt, or NDJSON, and the skipped list).
  PART is each shard's --output (or its .shard.json), in any order. Every shard 0..N-1 must be
  there once and finished (no .progress.json left), from the same input, model and options.

  --output PATH             out.npy or out.ndjson, named as for an unsharded run
  --output-format F         npy | ndjson (default: from the output's extension)
  --force                   overwrite existing outputs

  Example: equivae embed --input in.idx --output part-0.npy --shard 0/2   (and 1/2 -> part-1.npy)
           equivae embed merge --output emb.npy part-0.npy part-1.npy`;

const MAKE_SHAPES_USAGE = `equivae make-shapes --out DIR [options]

  Writes DIR/<class>/*.png and DIR/test/<class>/*.png: 32x32 colour images of a circle, a square or a
  triangle (the classes) with random colour, position, size and rotation on a random gradient
  background. Train on it with: equivae train --dataset folder --data-dir DIR

  --out DIR                 output directory (must not exist, or be empty)
  --per-class N             training + validation images per class (default: 300)
  --test-per-class N        test images per class (default: per-class / 4)
  --size N                  image side (default: 32)
  --seed N                  random seed (default: 1)`;

async function cmdMakeShapes(argv: string[]): Promise<void> {
  const { values: v } = parse(
    argv,
    {
      out: { type: "string" },
      "per-class": { type: "string" },
      "test-per-class": { type: "string" },
      size: { type: "string" },
      seed: { type: "string" },
    },
    false,
  );
  if (v.help) return void console.log(MAKE_SHAPES_USAGE);
  if (v.out === undefined)
    throw new InputError("make-shapes: --out is required (see 'equivae make-shapes --help')");
  const { makeShapes } = await import("./data/shapes.js");
  const r = makeShapes({
    out: v.out as string,
    perClass: int(v["per-class"], "per-class", 300, 2),
    ...(v["test-per-class"] !== undefined
      ? { testPerClass: int(v["test-per-class"], "test-per-class", 0, 0) }
      : {}),
    size: int(v.size, "size", 32, 8),
    seed: int(v.seed, "seed", 1, 0),
  });
  console.log(
    `wrote ${r.train} training and ${r.test} test images of ${r.classNames.join(", ")} to ${r.root}`,
  );
}

type Opts = NonNullable<ParseArgsConfig["options"]>;

type Parsed = { values: Record<string, string | boolean | undefined>; positionals: string[] };

function parse(argv: string[], options: Opts, allowPositionals: boolean): Parsed {
  try {
    return parseArgs({
      args: argv,
      options: { ...options, help: { type: "boolean", short: "h" } },
      allowPositionals,
      strict: true,
    }) as Parsed;
  } catch (e) {
    throw new InputError(errorMessage(e).replace(/\. To specify a positional argument.*$/, ""));
  }
}

function int(v: string | boolean | undefined, name: string, dflt: number, min = 1): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min)
    throw new InputError(`--${name} must be an integer >= ${min} (got '${v}')`);
  return n;
}

function num(v: string | boolean | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InputError(`--${name} must be a positive number (got '${v}')`);
  return n;
}

function commandLine(): string {
  return ["equivae", ...process.argv.slice(2)].join(" ");
}

async function cmdTrain(argv: string[]): Promise<void> {
  const { values: v } = parse(
    argv,
    {
      dataset: { type: "string" },
      "data-dir": { type: "string" },
      out: { type: "string" },
      epochs: { type: "string" },
      dv: { type: "string" },
      dz: { type: "string" },
      hidden: { type: "string" },
      filters: { type: "string" },
      "n-max": { type: "string" },
      "batch-size": { type: "string" },
      "batch-double-every": { type: "string" },
      "max-batch-size": { type: "string" },
      "context-share": { type: "string" },
      lr: { type: "string" },
      seed: { type: "string" },
      labels: { type: "string" },
      "labelled-warmup-steps": { type: "string" },
      "unlabelled-context": { type: "string" },
      "train-size": { type: "string" },
      "val-size": { type: "string" },
      backend: { type: "string" },
      resume: { type: "boolean" },
      "no-keep-best": { type: "boolean" },
      quiet: { type: "boolean" },
      "image-size": { type: "string" },
      channels: { type: "string" },
      "val-fraction": { type: "string" },
      likelihood: { type: "string" },
      "gaussian-scale": { type: "string" },
      standardise: { type: "string" },
    },
    false,
  );
  if (v.help) return void console.log(TRAIN_USAGE);
  const dataset = (v.dataset as string | undefined) ?? "mnist";
  const { checkDatasetName, loadDataset } = await import("./data/load.js");
  checkDatasetName(dataset);
  const likelihoodOpts = await likelihoodFlags(v);
  const folderOpts = await folderFlags(v);
  let labels: number | undefined;
  if (v.labels !== undefined && v.labels !== "all") {
    const n = Number(v.labels);
    if (!Number.isInteger(n) || n < 1)
      throw new InputError(`--labels must be a positive integer or 'all' (got '${v.labels}')`);
    labels = n;
  }
  const dv = int(v.dv, "dv", 16);
  const filters =
    v.filters === undefined
      ? undefined
      : (v.filters as string).split(",").map((s) => int(s.trim(), "filters", 0));
  const opts = {
    out: (v.out as string | undefined) ?? join("runs", dataset),
    epochs: int(v.epochs, "epochs", 40),
    dv,
    dz: int(v.dz, "dz", dv),
    hidden: v.hidden === undefined ? undefined : int(v.hidden, "hidden", 128),
    filters,
    nMax: int(v["n-max"], "n-max", 7),
    batchSize: int(v["batch-size"], "batch-size", 32),
    batchDoubleEvery: int(v["batch-double-every"], "batch-double-every", 10, 0),
    maxBatchSize: int(v["max-batch-size"], "max-batch-size", 256),
    contextShare: int(v["context-share"], "context-share", 1),
    learningRate: num(v.lr, "lr", 1e-3),
    seed: int(v.seed, "seed", 1, 0),
    resume: Boolean(v.resume),
    keepBest: !v["no-keep-best"],
    quiet: Boolean(v.quiet),
    command: commandLine(),
    labels,
    // Unset stays undefined so that runs made before the flag existed still resume.
    labelledWarmupSteps:
      v["labelled-warmup-steps"] === undefined
        ? undefined
        : int(v["labelled-warmup-steps"], "labelled-warmup-steps", 0, 0),
    unlabelledContext:
      v["unlabelled-context"] === undefined
        ? undefined
        : v["unlabelled-context"] === "all"
          ? ("all" as const)
          : int(v["unlabelled-context"], "unlabelled-context", 1, 1),
    ...likelihoodOpts,
  };
  if (opts.labelledWarmupSteps !== undefined && labels === undefined) {
    throw new InputError("--labelled-warmup-steps needs --labels N (it is about semi-supervised runs)");
  }
  if (opts.unlabelledContext !== undefined && labels === undefined) {
    throw new InputError("--unlabelled-context needs --labels N (it is about semi-supervised runs)");
  }
  const { checkBackendName } = await import("./backend/names.js");
  checkBackendName(v.backend as string | undefined);
  const trainSize = v["train-size"] === undefined ? undefined : int(v["train-size"], "train-size", 0);
  const valSize = v["val-size"] === undefined ? undefined : int(v["val-size"], "val-size", 0);

  // Data errors should surface before the (slower) backend start.
  const { data, loader } = await loadDataset({
    name: dataset,
    dataDir: v["data-dir"] as string | undefined,
    trainSize,
    valSize,
    ...folderOpts,
  });
  const { ComplementarySampler } = await import("./data/sampler.js");
  new ComplementarySampler(data.train.labels, data.classNames); // every class needs >= 2 members
  if (labels !== undefined) {
    // The budget's errors (too large, not a multiple of K, < 2 per class) before the backend starts.
    const { selectLabelled } = await import("./train/semi.js");
    selectLabelled(data.train.labels, data.classNames.length, labels, opts.seed, data.classNames);
  }
  const { initBackend, describeBackend } = await import("./backend/index.js");
  const backend = await initBackend(v.backend as string | undefined);
  console.log(describeBackend(backend));
  const { train } = await import("./train/trainer.js");
  const r = await train(data, {
    ...opts,
    backend: backend.name,
    device: backend.device,
    backendPackage: backend.package,
    ...(loader ? { datasetLoader: loader } : {}),
  });
  r.model.dispose();
}

/** --likelihood, --gaussian-scale, --standardise (unset flags stay undefined: the defaults apply). */
async function likelihoodFlags(
  v: Parsed["values"],
): Promise<import("./train/likelihood-options.js").LikelihoodOptions> {
  const { parseGaussianScale } = await import("./model/config.js");
  const lk = v.likelihood as string | undefined;
  if (lk !== undefined && lk !== "bernoulli" && lk !== "gaussian")
    throw new InputError(`unknown likelihood '${lk}' (choose bernoulli or gaussian)`);
  const st = v.standardise as string | undefined;
  if (st !== undefined && !["pixel", "channel", "off", "on"].includes(st))
    throw new InputError(`--standardise must be pixel, channel or off (got '${st}')`);
  const gs = v["gaussian-scale"] as string | undefined;
  if (gs !== undefined && lk === "bernoulli")
    throw new InputError("--gaussian-scale applies only to --likelihood gaussian");
  return {
    ...(lk !== undefined ? { likelihood: lk } : {}),
    ...(gs !== undefined ? { gaussianScale: parseGaussianScale(gs) } : {}),
    ...(st !== undefined ? { standardise: st === "on" ? "pixel" : (st as "pixel" | "channel" | "off") } : {}),
  };
}

/** --image-size, --channels, --val-fraction (image folders). */
async function folderFlags(v: Parsed["values"]): Promise<{
  imageSize?: import("./data/folder.js").ImageSize;
  channels?: 1 | 3;
  validationFraction?: number;
}> {
  const { parseImageSize } = await import("./data/folder.js");
  const ch = v.channels as string | undefined;
  if (ch !== undefined && ch !== "1" && ch !== "3")
    throw new InputError(`--channels must be 1 or 3 (got '${ch}')`);
  const vf = v["val-fraction"] as string | undefined;
  const f = vf === undefined ? undefined : Number(vf);
  if (f !== undefined && !(vf!.trim() !== "" && f >= 0 && f < 1))
    throw new InputError(`--val-fraction must be a number in [0, 1) (got '${vf}')`);
  return {
    ...(v["image-size"] !== undefined ? { imageSize: parseImageSize(v["image-size"] as string) } : {}),
    ...(ch !== undefined ? { channels: Number(ch) as 1 | 3 } : {}),
    ...(f !== undefined ? { validationFraction: f } : {}),
  };
}

async function cmdEval(argv: string[]): Promise<void> {
  const { values: v, positionals } = parse(
    argv,
    {
      split: { type: "string" },
      "data-dir": { type: "string" },
      "v-epochs": { type: "string" },
      "benchmark-epochs": { type: "string" },
      "train-size": { type: "string" },
      limit: { type: "string" },
      out: { type: "string" },
      seed: { type: "string" },
      record: { type: "boolean" },
      backend: { type: "string" },
    },
    true,
  );
  if (v.help) return void console.log(EVAL_USAGE);
  if (positionals.length !== 1)
    throw new InputError("usage: equivae eval <checkpoint> [--split test|validation]");
  const dir = resolve(positionals[0]);
  const split = (v.split as string | undefined) ?? "test";
  if (split !== "test" && split !== "validation")
    throw new InputError(`unknown split '${split}' (test or validation)`);
  const limit = v.limit === undefined ? undefined : int(v.limit, "limit", 1);
  const seed = int(v.seed, "seed", 1, 0);

  const { readManifest } = await import("./checkpoint/index.js");
  const { loadCheckpoint } = await import("./train/checkpoint.js");
  const m = await readManifest(dir);
  const name = m.dataset.name;
  const { DATASET_NAMES, loadDataset, requestFor } = await import("./data/load.js");
  if (!(DATASET_NAMES as readonly string[]).includes(name))
    throw new InputError(`eval: unsupported dataset '${name}' in ${dir}`);
  const { subset, range } = await import("./data/dataset.js");
  const semi = m.model.classifier === true;
  // A semi-supervised checkpoint's classifiers train on its labelled rows only (e.g. 100): 5 epochs
  // would be ~20 steps, a benchmark far from trained (measured: 23% test error after 200 epochs).
  const vEpochs = int(v["v-epochs"], "v-epochs", semi ? 200 : 20, 0);
  const benchEpochs = int(v["benchmark-epochs"], "benchmark-epochs", semi ? 200 : 5, 0);
  if (semi && v["train-size"] !== undefined)
    throw new InputError(
      "eval: --train-size does not apply to a semi-supervised checkpoint (its classifiers train on its labelled rows)",
    );
  const trainSize =
    v["train-size"] === undefined ? m.dataset.trainSize : int(v["train-size"], "train-size", 1);
  const { data } = await loadDataset({
    ...requestFor(m.dataset, v["data-dir"] as string | undefined),
    trainSize,
    withTest: split === "test",
  });
  if (
    data.train.height !== m.model.height ||
    data.train.width !== m.model.width ||
    data.train.channels !== m.model.channels
  ) {
    throw new InputError(
      `eval: the data's images are ${data.train.height}x${data.train.width}x${data.train.channels}, the model's ` +
        `${m.model.height}x${m.model.width}x${m.model.channels}`,
    );
  }
  let evalSet = split === "test" ? data.test! : data.validation;
  if (limit !== undefined) evalSet = subset(evalSet, range(0, Math.min(limit, evalSet.n)));

  const { initBackend, describeBackend } = await import("./backend/index.js");
  const backend = await initBackend(v.backend as string | undefined);
  console.log(describeBackend(backend));
  const ck = await loadCheckpoint(dir);
  const { evaluate } = await import("./train/evaluate.js");
  const r = await evaluate(ck.model, ck.centroids, data.train, evalSet, split, {
    vClassifierEpochs: vEpochs,
    benchmarkEpochs: benchEpochs,
    seed,
    ...(ck.labelled ? { labelled: ck.labelled } : {}),
  });
  // z activity: always on the whole validation split, whatever --split and --limit say, as train records it.
  const { measureZActivity } = await import("./train/z-activity.js");
  const zActivity =
    data.validation.n > 0 ? measureZActivity(ck.model, data.validation, { split: "validation" }) : undefined;
  const pct = (x: number | null) => (x === null ? "skipped" : `${(x * 100).toFixed(2)}%`);
  console.log("");
  console.log(`| ${split} error (${evalSet.n} images) | value |`);
  console.log("| --- | --- |");
  if (r.posteriorError !== null) console.log(`| q(y\|x) (semi-supervised) | ${pct(r.posteriorError)} |`);
  console.log(`| nearest centroid on v | ${pct(r.centroidError)} |`);
  console.log(`| neural classifier on v | ${pct(r.vClassifierError)} |`);
  console.log(
    `| benchmark classifier${ck.labelled ? ` (${ck.labelled.rows.length} labelled rows)` : ""} | ${pct(r.benchmarkError)} |`,
  );
  if (zActivity) {
    const kl = (d: number) => `${d} (${zActivity.klPerDim[d].toFixed(2)})`;
    console.log(
      `\nactive z dimensions (mean KL > ${zActivity.thresholdNats} nats on validation, ${zActivity.n} images): ` +
        `${zActivity.activeDims.length} of ${m.model.dz}: ${zActivity.activeDims.map(kl).join(", ") || "none"}`,
    );
  }
  const out = resolve((v.out as string | undefined) ?? join(dir, "eval.json"));
  const result = {
    checkpoint: dir,
    dataset: name,
    backend: backend.name,
    time: new Date().toISOString(),
    ...r,
    ...(zActivity ? { zActivity } : {}),
  };
  writeFileSync(out, JSON.stringify(result, null, 2) + "\n");
  console.log(`\nwrote ${out}`);
  if (v.record) {
    const { recordEvaluation } = await import("./checkpoint/index.js");
    await recordEvaluation(
      dir,
      {
        command: commandLine(),
        split,
        n: r.n,
        centroidError: r.centroidError,
        vClassifierError: r.vClassifierError,
        benchmarkError: r.benchmarkError,
        posteriorError: r.posteriorError,
        backend: backend.name,
        time: result.time,
      },
      zActivity,
    );
    console.log(
      `recorded the result in ${join(dir, "manifest.json")} (evaluation${zActivity ? ", zActivity" : ""})`,
    );
  }
  ck.model.dispose();
}

async function cmdExport(argv: string[]): Promise<void> {
  const { values: v, positionals } = parse(argv, {}, true);
  if (v.help) return void console.log(EXPORT_USAGE);
  if (positionals.length !== 1) throw new InputError("usage: equivae export <checkpoint>");
  const dir = resolve(positionals[0]);
  const { exportOnnx } = await import("./export/onnx.js");
  const r = await exportOnnx(dir);
  const kb = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
  const sig = (l: Array<{ name: string; shape: Array<number | string> }>) =>
    l.map((t) => `${t.name} [${t.shape.join(",")}]`).join(", ");
  for (const f of r.files) {
    const g = r.manifest.onnx!.graphs[f.graph];
    console.log(`wrote ${f.path} (${kb(f.bytes)}): ${sig(g.inputs)} -> ${sig(g.outputs)}`);
  }
  console.log(`updated ${join(dir, "manifest.json")} (opset ${r.manifest.onnx!.opset}, sha256 of each file)`);
  const { loadEngine } = await import("./inference/index.js");
  const engine = await loadEngine(dir, { engine: "onnx", threads: 1 });
  await engine.dispose();
  console.log("checked: every graph loads and runs in ONNX Runtime");
}

async function cmdServe(argv: string[]): Promise<void> {
  const { serveCommand } = await import("./serve/command.js");
  await serveCommand(argv);
}

async function cmdEmbed(argv: string[]): Promise<void> {
  if (argv[0] === "merge") return cmdEmbedMerge(argv.slice(1));
  const { values: v } = parse(
    argv,
    {
      shard: { type: "string" },
      input: { type: "string" },
      output: { type: "string" },
      format: { type: "string" },
      "output-format": { type: "string" },
      what: { type: "string" },
      model: { type: "string" },
      "batch-size": { type: "string" },
      engine: { type: "string" },
      threads: { type: "string" },
      workers: { type: "string" },
      device: { type: "string" },
      resume: { type: "boolean" },
      force: { type: "boolean" },
      "checkpoint-secs": { type: "string" },
      stats: { type: "boolean" },
      quiet: { type: "boolean" },
    },
    false,
  );
  if (v.help) return void console.log(EMBED_USAGE);
  if (v.input === undefined) throw new InputError("embed: --input is required (see 'equivae embed --help')");
  if (v.output === undefined)
    throw new InputError("embed: --output is required (see 'equivae embed --help')");
  const engineName = (v.engine as string | undefined) ?? "auto";
  if (engineName !== "auto" && engineName !== "onnx" && engineName !== "tfjs")
    throw new InputError(`unknown engine '${engineName}' (choose auto, onnx or tfjs)`);
  const secs = v["checkpoint-secs"] === undefined ? 1 : Number(v["checkpoint-secs"]);
  if (!Number.isFinite(secs) || secs < 0)
    throw new InputError(`--checkpoint-secs must be a number >= 0 (got '${v["checkpoint-secs"]}')`);
  const workersArg = (v.workers as string | undefined) ?? process.env.EQUIVAE_WORKERS;
  const { DEFAULT_MODEL, embedCommand } = await import("./embed/cli.js");
  await embedCommand({
    input: v.input as string,
    output: v.output as string,
    format: v.format as string | undefined,
    outputFormat: v["output-format"] as string | undefined,
    what: v.what as string | undefined,
    model: resolve((v.model as string | undefined) ?? DEFAULT_MODEL),
    batchSize: int(v["batch-size"], "batch-size", 256),
    engine: engineName,
    threads: v.threads === undefined ? undefined : int(v.threads, "threads", 1),
    workers: workersArg === undefined ? undefined : int(workersArg, "workers", 1),
    device: (v.device as string | undefined) ?? process.env.EQUIVAE_DEVICE,
    shard: v.shard as string | undefined,
    resume: Boolean(v.resume),
    force: Boolean(v.force),
    checkpointSeconds: secs,
    stats: Boolean(v.stats),
    quiet: Boolean(v.quiet),
  });
}

async function cmdEmbedMerge(argv: string[]): Promise<void> {
  const { values: v, positionals } = parse(
    argv,
    { output: { type: "string" }, "output-format": { type: "string" }, force: { type: "boolean" } },
    true,
  );
  if (v.help) return void console.log(EMBED_MERGE_USAGE);
  if (v.output === undefined)
    throw new InputError("embed merge: --output is required (see 'equivae embed merge --help')");
  const { mergeShards, mergeSummaryLine } = await import("./embed/merge.js");
  const r = await mergeShards({
    output: v.output as string,
    parts: positionals,
    outputFormat: v["output-format"] as string | undefined,
    force: Boolean(v.force),
  });
  console.log(mergeSummaryLine(r));
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case "train":
        await cmdTrain(rest);
        return 0;
      case "eval":
        await cmdEval(rest);
        return 0;
      case "export":
        await cmdExport(rest);
        return 0;
      case "embed":
        await cmdEmbed(rest);
        return 0;
      case "serve":
        await cmdServe(rest);
        return 0;
      case "make-shapes":
        await cmdMakeShapes(rest);
        return 0;
      case "report": {
        const { cmdReport } = await import("./report/command.js");
        await cmdReport(rest);
        return 0;
      }
      case undefined:
      case "help":
      case "--help":
      case "-h":
        console.log(USAGE);
        return cmd === undefined ? 2 : 0;
      default:
        throw new InputError(`unknown command '${cmd}' (see 'equivae --help')`);
    }
  } catch (e) {
    return reportError(e);
  }
}

process.exitCode = await main(process.argv.slice(2));
