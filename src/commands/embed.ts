/** `equivae embed`: embedCommand (src/embed/cli.ts) over an input of unlabelled images. */
import { resolve } from "node:path";
import { parseShard } from "../embed/shard.js";
import { parseDevice } from "../inference/device.js";
import { DEFAULT_MODEL_DIR, ENGINES } from "../util/defaults.js";
import type { CommandSpec, FlagSpec, FlagValues } from "../util/flags.js";

export const EMBED_FLAGS = [
  {
    flag: "input",
    kind: "string",
    arg: "PATH",
    required: true,
    help: "IDX file (.gz or raw), directory of PNG/JPEG/WebP/GIF (recursive), or NDJSON",
  },
  {
    flag: "format",
    kind: "string",
    arg: "F",
    dfltText: "from the input's type, name or first bytes",
    help: "idx, dir or ndjson",
  },
  {
    flag: "output",
    kind: "string",
    arg: "PATH",
    required: true,
    help: "out.npy (float32 [N, d] .npy files + out.npy.ids.txt) or out.ndjson (or .jsonl)",
  },
  {
    flag: "output-format",
    kind: "string",
    arg: "F",
    dfltText: "from the output's extension",
    help: "npy or ndjson",
  },
  {
    flag: "what",
    kind: "string",
    arg: "LIST",
    dfltText: "v,mu,logvar,class",
    help:
      "representations, comma-separated; .npy: one file each, out.<rep>.npy (just out.npy when only one); " +
      "class = the class probabilities [N, K]",
  },
  { flag: "model", kind: "string", arg: "DIR", dfltText: "the shipped models/mnist", help: "checkpoint" },
  { flag: "batch-size", kind: "int", dflt: 256, help: "images per engine call" },
  { flag: "engine", kind: "enum", choices: ENGINES, arg: "NAME", dflt: "auto", help: "auto, onnx or tfjs" },
  {
    flag: "workers",
    kind: "int",
    env: "EQUIVAE_WORKERS",
    dfltText: "the cores",
    help:
      "onnx: inference worker threads, one batch each at a time, results written in input order (tfjs " +
      "runs on the main thread)",
  },
  { flag: "threads", kind: "int", dfltText: "1", help: "ONNX Runtime intra-op threads per worker" },
  {
    flag: "device",
    kind: "string",
    env: "EQUIVAE_DEVICE",
    parse: parseDevice,
    arg: "D",
    dflt: "cpu",
    help: "cpu, or cuda: ONNX Runtime's CUDA execution provider, onnx engine (README: GPU)",
  },
  { flag: "resume", kind: "boolean", help: "continue an interrupted run from <output>.progress.json" },
  {
    flag: "force",
    kind: "boolean",
    help: "overwrite existing outputs (and drop an interrupted run's state)",
  },
  {
    flag: "checkpoint-secs",
    kind: "number",
    min: 0,
    arg: "S",
    dflt: 1,
    help: "minimum seconds between resume checkpoints; 0 = every batch",
  },
  {
    flag: "shard",
    kind: "string",
    parse: parseShard,
    arg: "I/N",
    help:
      "embed only shard I (0-based) of N: a contiguous range of whole batches of the input's records (the " +
      "same input, model and options for every shard); writes <output>.shard.json when done; join the " +
      "parts with 'embed merge'",
  },
  {
    flag: "stats",
    kind: "boolean",
    help: "print a JSON line with counts, timing and peak memory (VmHWM) at the end",
  },
  { flag: "quiet", kind: "boolean", help: "no progress bar" },
] as const satisfies readonly FlagSpec[];

async function run({ values: v }: { values: FlagValues<typeof EMBED_FLAGS> }): Promise<void> {
  // ONNX Runtime (or TF.js for --engine tfjs) loads only when there is work to do.
  const { embedCommand } = await import("../embed/cli.js");
  await embedCommand({
    input: v.input,
    output: v.output,
    format: v.format,
    outputFormat: v["output-format"],
    what: v.what,
    model: resolve(v.model ?? DEFAULT_MODEL_DIR),
    batchSize: v["batch-size"],
    engine: v.engine,
    threads: v.threads,
    workers: v.workers,
    device: v.device,
    shard: v.shard,
    resume: v.resume,
    force: v.force,
    checkpointSeconds: v["checkpoint-secs"],
    stats: v.stats,
    quiet: v.quiet,
  });
}

export const command: CommandSpec<typeof EMBED_FLAGS> = {
  name: "embed",
  usage:
    "equivae embed --input PATH --output PATH [options]\n" +
    "       equivae embed merge --output PATH PART...   (join the parts of a sharded run; --help)",
  intro: "  Embeds a dataset of unlabelled images (IDX, image directory, NDJSON) into .npy or NDJSON.",
  flags: EMBED_FLAGS,
  notes: "  Unreadable images are skipped, listed on stderr and in <output>.skipped.txt.",
  run,
};
