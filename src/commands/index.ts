/**
 * The CLI's commands: name, one-line summary, and the module that has its flag table and work.
 * Modules load only when their command runs, so `serve` never loads the trainer, nor `--help` TF.js.
 */
import { InputError } from "../util/errors.js";
import { wrapWords, type CommandSpec } from "../util/flags.js";

export interface CommandEntry {
  /** As typed after `equivae`: "train", "embed merge". */
  name: string;
  summary: string;
  load(): Promise<{ command: CommandSpec<any> }>;
}

export const COMMANDS: CommandEntry[] = [
  {
    name: "train",
    summary:
      "Train EquiVAE on a labelled dataset; writes a checkpoint (weights and ONNX graphs) after every epoch.",
    load: () => import("./train.js"),
  },
  {
    name: "eval",
    summary:
      "Evaluate a checkpoint: nearest-centroid, neural-on-v and benchmark classifier errors (and q(y|x) for semi-supervised checkpoints).",
    load: () => import("./eval.js"),
  },
  {
    name: "export",
    summary: "(Re)write a checkpoint's ONNX graphs (for ONNX Runtime inference) beside its weights.",
    load: () => import("./export.js"),
  },
  {
    name: "embed",
    summary: "Embed a dataset of unlabelled images (IDX, image directory, NDJSON) into .npy or NDJSON.",
    load: () => import("./embed.js"),
  },
  {
    name: "embed merge",
    summary: "Join the outputs of the shards of 'embed --shard I/N' into the files of one unsharded run.",
    load: () => import("./embed-merge.js"),
  },
  {
    name: "serve",
    summary: "Serve a checkpoint over HTTP (embeddings, classification, generation; see /docs).",
    load: () => import("./serve.js"),
  },
  {
    name: "report",
    summary:
      "Draw a checkpoint's pictures: prior samples per class, interpolations, style transfer, UMAP of v and z, a z-grid, curves, and an index.html of them all.",
    load: () => import("./report.js"),
  },
  {
    name: "make-shapes",
    summary: "Write a small seeded colour image-folder dataset (circles, squares, triangles).",
    load: () => import("./make-shapes.js"),
  },
];

/** The command that argv starts with (the longest name: "embed merge" before "embed"). */
export function findCommand(argv: string[]): { entry: CommandEntry; rest: string[] } {
  const words = (e: CommandEntry) => e.name.split(" ");
  const matches = COMMANDS.filter((e) => words(e).every((w, i) => argv[i] === w));
  const entry = matches.sort((a, b) => words(b).length - words(a).length)[0];
  if (!entry) throw new InputError(`unknown command '${argv[0]}' (see 'equivae --help')`);
  return { entry, rest: argv.slice(words(entry).length) };
}

const SUMMARY_COLUMN = 15;

/** One command's lines of the top-level help: its name, then its summary wrapped in a column. */
function summaryLines(e: CommandEntry): string[] {
  const [first, ...rest] = wrapWords(e.summary, SUMMARY_COLUMN);
  return [`  ${e.name}`.padEnd(SUMMARY_COLUMN) + first, ...rest.map((l) => " ".repeat(SUMMARY_COLUMN) + l)];
}

/** `equivae --help`: every command of the table with its summary. */
export function topLevelUsage(): string {
  return [
    "equivae <command> [options]",
    "",
    "Commands:",
    ...COMMANDS.flatMap(summaryLines),
    "",
    "Run 'equivae <command> --help' for the options of a command.",
  ].join("\n");
}
