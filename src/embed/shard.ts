/**
 * Sharded batch embedding: `embed --shard I/N` embeds one of N contiguous ranges of the input's
 * stable record order, and `embed merge` concatenates the N parts into what one unsharded run
 * writes (see merge.ts).
 *
 * The rule. Every input's record count is known before the first record is read (an IDX header,
 * the directory walk the embedder already makes, the NDJSON line count), so the shards are
 * contiguous ranges and the merge is a plain concatenation. The ranges are cut at whole batches:
 * with T records, B = --batch-size and M = ceil(T / B) batches, shard I takes batches
 * [floor(I * M / N), floor((I + 1) * M / N)), i.e. records [B * floor(I * M / N), min(T, ...)).
 * Every shard therefore makes exactly the engine calls of the unsharded run, batch for batch
 * (an engine whose result could depend on what else is in the batch, a GPU kernel chosen by the
 * batch size for instance, still gives the same bytes), and every record is in exactly one shard.
 * With more shards than batches some shards are empty; they still write (empty) parts.
 *
 * A finished shard leaves `<output>.shard.json` beside its outputs: the shard, the input's
 * fingerprint, the options and the byte length of every output file. The merge reads nothing else.
 */
import { readFileSync } from "node:fs";
import { InputError, errorMessage } from "../util/errors.js";

export interface Shard {
  /** 0-based. */
  index: number;
  count: number;
}

/** A shard and the records it covers: [start, end) of the input's record order. */
export interface ShardRange extends Shard {
  start: number;
  end: number;
}

/** `I/N` with integers 0 <= I < N. */
export function parseShard(s: string): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(s);
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || !Number.isSafeInteger(index) || !Number.isSafeInteger(count) || count < 1 || index >= count)
    throw new InputError(`--shard must be I/N with integers 0 <= I < N, e.g. 0/4 (got '${s}')`);
  return { index, count };
}

export function shardName(s: Shard): string {
  return `${s.index}/${s.count}`;
}

/** The records of shard I/N of an input of `total` records read `batchSize` at a time. */
export function shardRange(shard: Shard, total: number, batchSize: number): ShardRange {
  const batches = Math.ceil(total / batchSize);
  const at = (i: number) => Math.min(total, batchSize * Math.floor((i * batches) / shard.count));
  return { ...shard, start: at(shard.index), end: at(shard.index + 1) };
}

/** The part of a sharded run a merge needs: written when the shard completes. */
export interface ShardManifest {
  version: 1;
  shard: ShardRange;
  /** Records in the whole input. */
  total: number;
  input: Record<string, unknown>;
  options: Record<string, unknown>;
  /** Records of the shard consumed (end - start), images embedded, images skipped. */
  records: number;
  rows: number;
  skipped: number;
  /** Byte length of each output file, by role: a representation (npy), "ids", "ndjson", "skipped". */
  files: Record<string, number>;
}

export function shardManifestPath(output: string): string {
  return `${output}.shard.json`;
}

export function readShardManifest(path: string): ShardManifest {
  let m: ShardManifest;
  try {
    m = JSON.parse(readFileSync(path, "utf8")) as ShardManifest;
  } catch (e) {
    throw new InputError(`${path}: unreadable shard manifest (${errorMessage(e)})`);
  }
  const ok =
    typeof m === "object" &&
    m !== null &&
    m.version === 1 &&
    typeof m.shard === "object" &&
    m.shard !== null &&
    [m.shard.index, m.shard.count, m.shard.start, m.shard.end, m.total, m.rows].every(Number.isSafeInteger) &&
    typeof m.files === "object" &&
    m.files !== null &&
    typeof m.options === "object" &&
    m.options !== null;
  if (!ok) throw new InputError(`${path}: not a shard manifest of this version of equivae`);
  return m;
}
