/** `equivae embed merge`: mergeShards (src/embed/merge.ts) over the parts of a sharded embedding run. */
import type { CommandSpec, FlagSpec, FlagValues } from "../util/flags.js";

export const EMBED_MERGE_FLAGS = [
  {
    flag: "output",
    kind: "string",
    arg: "PATH",
    required: true,
    help: "out.npy or out.ndjson, named as for an unsharded run",
  },
  {
    flag: "output-format",
    kind: "string",
    arg: "F",
    dfltText: "from the output's extension",
    help: "npy or ndjson",
  },
  { flag: "force", kind: "boolean", help: "overwrite existing outputs" },
] as const satisfies readonly FlagSpec[];

type MergeArgs = { values: FlagValues<typeof EMBED_MERGE_FLAGS>; positionals: string[] };

async function run({ values: v, positionals }: MergeArgs): Promise<void> {
  const { mergeShards, mergeSummaryLine } = await import("../embed/merge.js");
  const r = await mergeShards({
    output: v.output,
    parts: positionals,
    outputFormat: v["output-format"],
    force: v.force,
  });
  console.log(mergeSummaryLine(r));
}

export const command: CommandSpec<typeof EMBED_MERGE_FLAGS> = {
  name: "embed merge",
  usage: "equivae embed merge --output PATH PART...",
  intro:
    "  Joins the outputs of the N shards of 'equivae embed --shard I/N' into exactly the files one\n" +
    "  unsharded run writes (.npy files with their .ids.txt, or NDJSON, and the skipped list).\n" +
    "  PART is each shard's --output (or its .shard.json), in any order. Every shard 0..N-1 must be\n" +
    "  there once and finished (no .progress.json left), from the same input, model and options.",
  flags: EMBED_MERGE_FLAGS,
  notes:
    "  Example: equivae embed --input in.idx --output part-0.npy --shard 0/2   (and 1/2 -> part-1.npy)\n" +
    "           equivae embed merge --output emb.npy part-0.npy part-1.npy",
  positionals: "any",
  run,
};
