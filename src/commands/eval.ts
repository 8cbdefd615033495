/** `equivae eval <checkpoint>`: runEvaluation (src/train/eval-run.ts), then a table of its errors. */
import { join } from "node:path";
import { BACKEND_CHOICES } from "../backend/names.js";
// eval-run loads TF.js and the backend only when it runs (--help stays light).
import { EVAL_SPLITS, runEvaluation, type Evaluation } from "../train/eval-run.js";
import { parseInteger, type CommandSpec, type FlagSpec, type FlagValues } from "../util/flags.js";
import { commandLine } from "./invocation.js";

/** The largest set eval embeds (a set of n costs n images' forward passes per row of the split). */
const MAX_SET_SIZE = 64;

function parseSetSizes(s: string, name: string): number[] {
  const sizes = s.split(",").map((x) => parseInteger(x.trim(), `each entry of ${name}`, 1, MAX_SET_SIZE));
  return [...new Set(sizes)].sort((a, b) => a - b);
}

export const EVAL_FLAGS = [
  {
    flag: "split",
    kind: "enum",
    choices: EVAL_SPLITS,
    arg: "NAME",
    dflt: "test",
    help:
      "test, validation or train (train: the rows the centroids come from, to see whether v underfits; " +
      "not with --record)",
  },
  {
    flag: "data-dir",
    kind: "string",
    arg: "DIR",
    dfltText: "as in training",
    help:
      "where the dataset's files are (IDX, SVHN .mat, or the image folder ROOT; its test split is " +
      "ROOT/test/<class>/)",
  },
  {
    flag: "v-epochs",
    kind: "int",
    min: 0,
    dfltText: "20; 200 for a semi-supervised checkpoint",
    help: "epochs of the neural classifier on v, 0 = skip",
  },
  {
    flag: "benchmark-epochs",
    kind: "int",
    min: 0,
    dfltText: "5; 200 for a semi-supervised checkpoint",
    help: "epochs of the benchmark classifier, 0 = skip",
  },
  {
    flag: "train-size",
    kind: "int",
    dfltText: "as the checkpoint",
    help: "training images for the two classifiers (a semi-supervised checkpoint's train on its labelled rows)",
  },
  { flag: "limit", kind: "int", dfltText: "all", help: "evaluate only the first N images of the split" },
  {
    flag: "set-sizes",
    kind: "string",
    parse: parseSetSizes,
    arg: "N,N,...",
    dfltText: "none",
    help:
      "also the nearest-centroid error of set embeddings (n images known to share a class, as " +
      "/embed/invariant embeds them): each image of the split plus n - 1 random others of its class, " +
      "seeded by --seed; n = 1 is the plain centroid error",
  },
  {
    flag: "out",
    kind: "string",
    arg: "FILE",
    dfltText: "<checkpoint>/eval.json",
    help: "where to write the JSON result",
  },
  {
    flag: "seed",
    kind: "int",
    min: 0,
    dflt: 1,
    help: "seed of the two classifiers' initial weights, dropout and shuffling, and of --set-sizes' draws",
  },
  {
    flag: "record",
    kind: "boolean",
    help:
      "also record the result in the checkpoint's manifest.json ('evaluation', and 'zActivity': the mean " +
      "KL per z dimension on the validation split; both shown by GET /v1/models); the checkpoint's files " +
      "and their sha256 are not touched",
  },
  {
    flag: "backend",
    kind: "enum",
    choices: BACKEND_CHOICES,
    arg: "NAME",
    dfltText: "the fastest available",
    help: "tensorflow, tensorflow-gpu, tensorflow-cpu, wasm or cpu",
  },
] as const satisfies readonly FlagSpec[];

function pct(x: number | null): string {
  return x === null ? "skipped" : `${(x * 100).toFixed(2)}%`;
}

/** The errors as a Markdown table, then the active z dimensions. */
function printEvaluation(e: Evaluation): void {
  const r = e.result;
  const labelled = e.labelledRows !== undefined ? ` (${e.labelledRows} labelled rows)` : "";
  console.log("");
  console.log(`| ${r.split} error (${r.n} images) | value |`);
  console.log("| --- | --- |");
  if (r.posteriorError !== null) console.log(`| q(y\\|x) (semi-supervised) | ${pct(r.posteriorError)} |`);
  console.log(`| nearest centroid on v | ${pct(r.centroidError)} |`);
  for (const [n, err] of Object.entries(r.setCentroidError ?? {}))
    console.log(`| nearest centroid on v of ${n}-image sets | ${pct(err)} |`);
  console.log(`| neural classifier on v | ${pct(r.vClassifierError)} |`);
  console.log(`| benchmark classifier${labelled} | ${pct(r.benchmarkError)} |`);
  const z = r.zActivity;
  if (z) {
    const kl = (d: number) => `${d} (${z.klPerDim[d].toFixed(2)})`;
    console.log(
      `\nactive z dimensions (mean KL > ${z.thresholdNats} nats on validation, ${z.n} images): ` +
        `${z.activeDims.length} of ${e.dz}: ${z.activeDims.map(kl).join(", ") || "none"}`,
    );
  }
}

type EvalArgs = { values: FlagValues<typeof EVAL_FLAGS>; positionals: string[] };

async function run({ values: v, positionals }: EvalArgs): Promise<void> {
  const e = await runEvaluation({
    checkpoint: positionals[0],
    split: v.split,
    dataDir: v["data-dir"],
    vClassifierEpochs: v["v-epochs"],
    benchmarkEpochs: v["benchmark-epochs"],
    trainSize: v["train-size"],
    limit: v.limit,
    setSizes: v["set-sizes"],
    seed: v.seed,
    backend: v.backend,
    out: v.out,
    recordCommand: v.record ? commandLine() : undefined,
  });
  printEvaluation(e);
  console.log(`\nwrote ${e.out}`);
  if (e.recorded) {
    const what = e.result.zActivity ? "evaluation, zActivity" : "evaluation";
    console.log(`recorded the result in ${join(e.result.checkpoint, "manifest.json")} (${what})`);
  }
}

export const command: CommandSpec<typeof EVAL_FLAGS> = {
  name: "eval",
  usage: "equivae eval <checkpoint> [options]",
  intro:
    "  Evaluates a checkpoint: nearest-centroid, neural-on-v and benchmark classifier errors (and q(y|x)\n" +
    "  for semi-supervised checkpoints), and which z dimensions it uses; writes them as JSON.",
  flags: EVAL_FLAGS,
  positionals: 1,
  run,
};
