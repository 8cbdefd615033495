/**
 * Batch embedding of unlabelled data (the `embed` command): streams an input (IDX, a directory of
 * PNG/JPEG, NDJSON of base64 images) through the inference Engine in batches and writes .npy or
 * NDJSON incrementally. Memory stays flat: at most about (workers + 2) batches of images are held.
 *
 * Pipelining: with an engine on worker threads (`loadEngine(..., { workers })`) up to `workers`
 * batches are inferred at once while the next one is read and decoded on this thread; results are
 * written strictly in input order, so the outputs and checkpoints are those of a sequential run.
 *
 * Resume design: after a batch has been written (at most every `checkpointSeconds`), the .npy
 * headers are rewritten with the row count, every output file is fsynced, and then
 * `<output>.progress.json` is replaced atomically with the records consumed, the byte length of
 * every output file, the input's fingerprint and the options. `--resume` checks the fingerprint
 * and options, truncates every file to its recorded length and continues with the next record, so
 * a run killed at any point and resumed writes exactly the bytes of an uninterrupted run. The
 * state file is removed when the run completes.
 *
 * Sharding (`--shard I/N`, see shard.ts): the run embeds one contiguous, batch-aligned range of the
 * records, resumes like any run (the shard is in the state; another shard's state is refused), and
 * when complete writes `<output>.shard.json` for `embed merge` before removing the state.
 */
import { existsSync, promises as fsp, readFileSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { isDeepStrictEqual } from "node:util";
import { rankByCentroid } from "../inference/engine.js";
import type { ClassScore, Engine } from "../inference/engine.js";
import { InputError, errorMessage } from "../util/errors.js";
import { writeFileAtomic } from "../util/fsx.js";
import { Progress } from "../util/progress.js";
import {
  NpyWriter,
  REPS,
  TrackedFile,
  outputFormatOf,
  withThousands,
  type OutputFormat,
  type Rep,
} from "./outputs.js";
import {
  shardManifestPath,
  shardName,
  shardRange,
  type Shard,
  type ShardManifest,
  type ShardRange,
} from "./shard.js";
import {
  detectFormat,
  openInput,
  type Batch,
  type Input,
  type InputFormat,
  type RecordReader,
} from "./sources.js";

export { REPS, type Rep, type OutputFormat } from "./outputs.js";
export type { InputFormat } from "./sources.js";

export interface EmbedOptions {
  input: string;
  output: string;
  /** idx | dir | ndjson; detected from the input when undefined. */
  format?: string;
  /** npy | ndjson; from the output's extension when undefined. */
  outputFormat?: string;
  /** Representations to write (default: all of v, mu, logvar, class). */
  what?: Rep[];
  /** Records per engine call (default 256). */
  batchSize?: number;
  /** Continue an interrupted run from its `<output>.progress.json`. */
  resume?: boolean;
  /** Overwrite existing outputs (and discard an interrupted run's state). */
  force?: boolean;
  /** Minimum seconds between checkpoints (0: after every batch; default 1). */
  checkpointSeconds?: number;
  /** Progress bar on stderr (default true). */
  progress?: boolean;
  /** Where notes (skipped images) go; default stderr. */
  log?: (line: string) => void;
  /** Identifies the model in the resume state (default: the engine's manifest checksums). */
  modelId?: Record<string, unknown>;
  /**
   * Batches inferred at once (default: the engine's worker count, 1 for an engine on this
   * thread). Results are written in input order whatever it is.
   */
  inFlight?: number;
  /** Embed only this shard of the input's records (see shard.ts). */
  shard?: Shard;
}

export interface EmbedPlan {
  input: string;
  format: InputFormat;
  outputFormat: OutputFormat;
  what: Rep[];
  batchSize: number;
  files: OutputFiles;
  /** The state to continue from (--resume with a state file). */
  state?: EmbedState;
  shard?: Shard;
}

export interface OutputFiles {
  /** npy: one file per representation. */
  npy: Partial<Record<Rep, string>>;
  /** npy: the ids, one per line, in row order. */
  ids?: string;
  /** ndjson: the one output file. */
  ndjson?: string;
  skipped: string;
  state: string;
  /** A finished shard's manifest (`<output>.shard.json`), for `embed merge`. */
  shard: string;
}

export interface EmbedState {
  version: 1;
  input: Record<string, unknown>;
  options: Record<string, unknown>;
  /** Records this run covers: the input's, or its shard's. */
  total: number;
  /** Of those, records consumed. */
  records: number;
  /** Images embedded (rows written). */
  rows: number;
  skipped: number;
  /** Byte length of every output file at this checkpoint. */
  files: Record<string, number>;
  /** A sharded run: its shard and records [start, end) of the input. */
  shard?: ShardRange;
}

export interface EmbedResult {
  input: string;
  format: InputFormat;
  total: number;
  records: number;
  embedded: number;
  skipped: number;
  ignored: number;
  resumedFrom: number;
  seconds: number;
  /** Images embedded per second in this run (excluding work done before a resume). */
  rate: number;
  files: string[];
  skippedFile?: string;
  /** A sharded run: its shard, and the manifest `embed merge` reads. */
  shard?: ShardRange;
  shardManifest?: string;
}

const MAX_SKIP_LINES = 20;

/** Output paths: `--output out.npy` with one representation is out.npy, else out.<rep>.npy each. */
export function outputFiles(output: string, fmt: OutputFormat, what: Rep[]): OutputFiles {
  output = resolve(output);
  const side = {
    skipped: `${output}.skipped.txt`,
    state: `${output}.progress.json`,
    shard: shardManifestPath(output),
  };
  if (fmt === "ndjson") return { npy: {}, ndjson: output, ...side };
  const stem = output.replace(/\.npy$/i, "");
  const npy: Partial<Record<Rep, string>> = {};
  for (const r of what) npy[r] = what.length === 1 ? output : `${stem}.${r}.npy`;
  return { npy, ids: `${output}.ids.txt`, ...side };
}

export function parseWhat(s: string): Rep[] {
  const parts = s
    .split(",")
    .map((x) => x.trim())
    .filter((x) => x !== "");
  if (parts.length === 0) throw new InputError(`--what needs one or more of ${REPS.join(",")}`);
  for (const p of parts) {
    if (!REPS.includes(p as Rep))
      throw new InputError(`--what: unknown representation '${p}' (choose from ${REPS.join(",")})`);
  }
  return REPS.filter((r) => parts.includes(r)); // canonical order, no duplicates
}

/** Checks everything that can be checked without the model; returns what to do. */
export async function planEmbed(opts: EmbedOptions): Promise<EmbedPlan> {
  const input = resolve(opts.input);
  const output = resolve(opts.output);
  const what = opts.what ?? REPS;
  if (what.length === 0) throw new InputError("nothing to write (--what is empty)");
  const batchSize = opts.batchSize ?? 256;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 65536)
    throw new InputError(`--batch-size must be an integer from 1 to 65536 (got ${batchSize})`);
  const outputFormat = outputFormatOf(output, opts.outputFormat);
  const format = await detectFormat(input, opts.format);
  const dir = dirname(output);
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new InputError(`output directory does not exist: ${dir}`);
  if (existsSync(output) && statSync(output).isDirectory())
    throw new InputError(`output is a directory: ${output}`);
  const files = outputFiles(output, outputFormat, what);
  const outs = [...Object.values(files.npy), files.ids, files.ndjson].filter(
    (f): f is string => f !== undefined,
  );
  if (outs.includes(input)) throw new InputError(`the output would overwrite the input ${input}`);
  const hasState = existsSync(files.state);
  let state: EmbedState | undefined;
  if (opts.resume && hasState && !opts.force) {
    try {
      state = JSON.parse(readFileSync(files.state, "utf8")) as EmbedState;
    } catch (e) {
      throw new InputError(`${files.state}: unreadable resume state (${errorMessage(e)})`);
    }
    if (state.version !== 1)
      throw new InputError(`${files.state}: unknown state version ${String(state.version)}`);
    const was = state.shard ? shardName(state.shard) : undefined;
    const now = opts.shard ? shardName(opts.shard) : undefined;
    if (was !== now)
      throw new InputError(
        `cannot resume: the interrupted run ${was ? `is shard ${was}` : "is not sharded"}, ` +
          `this one ${now ? `is shard ${now}` : "is not"} (${files.state})`,
      );
  } else if (!opts.force) {
    if (hasState)
      throw new InputError(
        `${files.state} exists: an interrupted run; pass --resume to continue it or --force to start over`,
      );
    const existing = [...outs, files.skipped, files.shard].filter((f) => existsSync(f));
    if (existing.length > 0)
      throw new InputError(
        `${existing[0]} exists${opts.resume ? " and there is no interrupted run to resume" : ""} (pass --force to overwrite)`,
      );
  }
  return { input, format, outputFormat, what, batchSize, files, state, shard: opts.shard };
}

/** Reads at most `n` more records of `r` (a shard's end). */
function limitReader(r: RecordReader, n: number): RecordReader {
  let left = n;
  return {
    next(max) {
      const k = Math.min(max, left);
      left -= k;
      return k > 0 ? r.next(k) : Promise.resolve(null);
    },
    close: () => r.close(),
  };
}

function modelIdentity(engine: Engine): Record<string, unknown> {
  const f = (engine.manifest as { files?: Record<string, { sha256: string }> }).files ?? {};
  return {
    weightsSha256: f["weights.bin"]?.sha256 ?? null,
    centroidsSha256: f["centroids.json"]?.sha256 ?? null,
  };
}

interface Outputs {
  npy: Array<[Rep, NpyWriter]>;
  ids?: TrackedFile;
  ndjson?: TrackedFile;
  skipped: TrackedFile;
  all: TrackedFile[];
}

async function openOutputs(plan: EmbedPlan, dims: Record<Rep, number>): Promise<Outputs> {
  const st = plan.state;
  const opened: TrackedFile[] = [];
  try {
    const file = async (path: string) => {
      const f = st ? await TrackedFile.resume(path, lengthOf(st, path)) : await TrackedFile.create(path);
      opened.push(f);
      return f;
    };
    const npy: Array<[Rep, NpyWriter]> = [];
    for (const r of plan.what) {
      const path = plan.files.npy[r];
      if (path === undefined) continue;
      const w = st
        ? await NpyWriter.resume(path, dims[r], lengthOf(st, path))
        : await NpyWriter.create(path, dims[r]);
      opened.push(w.file);
      npy.push([r, w]);
      if (st && w.rows !== st.rows)
        throw new InputError(`cannot resume: ${path} holds ${w.rows} rows, the state says ${st.rows}`);
    }
    const ids = plan.files.ids ? await file(plan.files.ids) : undefined;
    const ndjson = plan.files.ndjson ? await file(plan.files.ndjson) : undefined;
    const skipped = await file(plan.files.skipped);
    return { npy, ids, ndjson, skipped, all: opened };
  } catch (e) {
    await Promise.all(opened.map((f) => f.close()));
    throw e;
  }
}

/** A kill during writeFileAtomic can leave its temporary file behind. */
async function removeStaleTemp(state: string): Promise<void> {
  const prefix = `.${basename(state)}.tmp-`;
  for (const n of await fsp.readdir(dirname(state)).catch(() => [] as string[]))
    if (n.startsWith(prefix)) await fsp.rm(join(dirname(state), n), { force: true });
}

function lengthOf(st: EmbedState, path: string): number {
  const n = st.files[path];
  if (typeof n !== "number") throw new InputError(`cannot resume: ${path} is not in the saved state`);
  return n;
}

/** Shortest decimal that reads back as the same float32 (exact, and shorter than the double). */
export function f32(x: number): string {
  if (!Number.isFinite(x)) return "null";
  for (let p = 6; p < 9; p++) {
    const s = x.toPrecision(p);
    if (Math.fround(Number(s)) === x) return String(Number(s));
  }
  return String(Number(x.toPrecision(9)));
}

function f32List(a: Float32Array, i: number, d: number): string {
  let s = "[";
  for (let j = 0; j < d; j++) s += (j > 0 ? "," : "") + f32(a[i * d + j]);
  return s + "]";
}

/** What the engine computed for one batch. */
interface Computed {
  reps: Record<Rep, Float32Array | undefined>;
  ranked?: ClassScore[][];
}

/** Batches to keep in the engine at once: as many as it has workers (a PooledEngine), else 1. */
function inFlight(engine: Engine, requested?: number): number {
  const n = requested ?? (engine as { workers?: unknown }).workers;
  if (n === undefined) return 1;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1)
    throw new InputError(`in-flight batches must be a positive integer (got ${String(n)})`);
  return n;
}

/** Runs the embedding; `engine` must be loaded from the model (the caller disposes of it). */
export async function runEmbed(plan: EmbedPlan, engine: Engine, opts: EmbedOptions): Promise<EmbedResult> {
  const t0 = Date.now();
  const log = opts.log ?? ((s: string) => void process.stderr.write(`${s}\n`));
  const cfg = engine.config;
  const K = engine.classNames.length;
  const dims: Record<Rep, number> = { v: cfg.dv, mu: cfg.dz, logvar: cfg.dz, class: K };
  const input: Input = await openInput(plan.input, plan.format, cfg);
  const options = {
    model: opts.modelId ?? modelIdentity(engine),
    format: plan.format,
    outputFormat: plan.outputFormat,
    what: plan.what,
    batchSize: plan.batchSize,
  };
  // A shard covers records [first, first + total) of the input; an unsharded run all of them.
  const range = plan.shard ? shardRange(plan.shard, input.total, plan.batchSize) : undefined;
  const first = range?.start ?? 0;
  const total = range ? range.end - range.start : input.total;
  const st = plan.state;
  if (st) {
    if (!isDeepStrictEqual(st.input, input.fingerprint))
      throw new InputError(
        `cannot resume: the input changed since the interrupted run (${plan.files.state})`,
      );
    for (const [k, v] of Object.entries(options)) {
      if (!isDeepStrictEqual(st.options[k], v))
        throw new InputError(
          `cannot resume: ${k} differs from the interrupted run (${JSON.stringify(st.options[k])}, now ${JSON.stringify(v)})`,
        );
    }
    if (!isDeepStrictEqual(st.shard, range))
      throw new InputError(
        `cannot resume: shard ${shardName(range!)} now covers records ${range!.start}-${range!.end}, ` +
          `the interrupted run ${st.shard!.start}-${st.shard!.end} (${plan.files.state})`,
      );
    if (st.records > total) throw new InputError(`cannot resume: the state is past the end of the input`);
  }
  await removeStaleTemp(plan.files.state);
  const out = await openOutputs(plan, dims);
  await fsp.rm(plan.files.shard, { force: true }); // a finished shard's manifest is stale now
  let records = st?.records ?? 0;
  let rows = st?.rows ?? 0;
  let skipped = st?.skipped ?? 0;
  const resumedFrom = records;
  if (range && opts.progress !== false)
    log(
      `shard ${shardName(range)}: ` +
        (range.end > range.start
          ? `records ${range.start} to ${range.end - 1} of ${input.total}`
          : `no records (${input.total} records make fewer batches than shards)`),
    );
  if (resumedFrom > 0)
    log(
      `resuming at record ${resumedFrom} of ${total}${range ? " of the shard" : ""} (${rows} embedded, ${skipped} skipped)`,
    );

  const checkpoint = async () => {
    for (const [, w] of out.npy) await w.writeHeader();
    await Promise.all(out.all.map((f) => f.sync()));
    const state: EmbedState = {
      version: 1,
      input: input.fingerprint,
      options,
      total,
      records,
      rows,
      skipped,
      files: Object.fromEntries(out.all.map((f) => [f.path, f.length])),
      ...(range ? { shard: range } : {}),
    };
    await writeFileAtomic(plan.files.state, JSON.stringify(state, null, 1) + "\n");
  };

  const wantEq = plan.what.includes("mu") || plan.what.includes("logvar");
  const wantClass = plan.what.includes("class");
  const progress = opts.progress === false ? undefined : new Progress("embed", total - resumedFrom, "img");
  const every = (opts.checkpointSeconds ?? 1) * 1000;
  let lastCheckpoint = Date.now();
  const depth = inFlight(engine, opts.inFlight);

  /** The engine's work on one batch (v, then mu and logvar from it; the class probabilities). */
  const infer = async (batch: Batch): Promise<Computed> => {
    const n = batch.ids.length;
    const v = await engine.embedInvariant(batch.pixels, n);
    const eq = wantEq ? await engine.encodeEquivariant(batch.pixels, n, v) : undefined;
    const ranked = wantClass ? rankByCentroid(v, cfg.dv, engine.centroids, engine.classNames, K) : undefined;
    const reps: Record<Rep, Float32Array | undefined> = {
      v,
      mu: eq?.mu,
      logvar: eq?.logvar,
      class: undefined,
    };
    if (ranked) {
      const p = new Float32Array(n * K);
      ranked.forEach((row, i) => row.forEach((s) => (p[i * K + s.label] = s.p)));
      reps.class = p;
    }
    return { reps, ranked };
  };

  /** Writes one batch's results (always in input order) and counts it as done. */
  const write = async (batch: Batch, computed: Computed | undefined) => {
    const n = batch.ids.length;
    if (computed) {
      const { reps, ranked } = computed;
      if (out.ndjson) {
        let s = "";
        for (let i = 0; i < n; i++) {
          s += `{"id":${JSON.stringify(batch.ids[i])}`;
          for (const r of plan.what) {
            if (r === "class")
              s += `,"class":${ranked![i][0].label},"p":${f32(Math.fround(ranked![i][0].p))}`;
            else s += `,"${r}":${f32List(reps[r]!, i, dims[r])}`;
          }
          s += "}\n";
        }
        await out.ndjson.append(s);
      }
      for (const [r, w] of out.npy) await w.append(reps[r]!);
      if (out.ids) await out.ids.append(batch.ids.map((id) => `${id}\n`).join(""));
    }
    if (batch.skipped.length > 0) {
      await out.skipped.append(batch.skipped.map((s) => `${s.id}\t${s.reason}\n`).join(""));
      for (const s of batch.skipped) {
        if (skipped < MAX_SKIP_LINES) log(`skipped ${s.id}: ${s.reason}`);
        else if (skipped === MAX_SKIP_LINES)
          log(`... more skipped images are listed in ${plan.files.skipped}`);
        skipped++;
      }
    }
    records += batch.records;
    rows += n;
    if (Date.now() - lastCheckpoint >= every) {
      await checkpoint();
      lastCheckpoint = Date.now();
    }
    progress?.tick(batch.records);
  };

  const reader = range
    ? limitReader(await input.open(first + records), total - records)
    : await input.open(records);
  // Batches whose engine calls have started, oldest first: up to `depth` of them are inferred at
  // once (on the engine's workers) while the next one is read and decoded here; each is written
  // only after every batch before it, so the outputs and the resume state are those of a
  // one-batch-at-a-time run.
  const pending: Array<{ batch: Batch; result: Promise<Computed> | undefined }> = [];
  try {
    if (!st) await checkpoint(); // a state file from the start: a killed run is always resumable
    let next: Promise<Batch | null> | undefined = reader.next(plan.batchSize);
    for (;;) {
      while (next !== undefined && pending.length < depth) {
        const batch = await next;
        if (batch === null) {
          next = undefined;
          break;
        }
        next = reader.next(plan.batchSize); // read ahead while the engine works
        next.catch(() => undefined);
        const result = batch.ids.length > 0 ? infer(batch) : undefined;
        result?.catch(() => undefined); // awaited in order below; a failure surfaces there
        pending.push({ batch, result });
      }
      const head = pending.shift();
      if (head === undefined) break;
      await write(head.batch, head.result === undefined ? undefined : await head.result);
    }
    await checkpoint();
  } finally {
    reader.close();
    await Promise.all(out.all.map((f) => f.close()));
  }
  // Complete: the outputs are final; a shard's manifest first (a kill before the state is removed
  // leaves a run that resumes and finishes again), then drop the resume state, and the skipped
  // list if empty.
  if (range) {
    const files: Record<string, number> = Object.fromEntries(out.npy.map(([r, w]) => [r, w.file.length]));
    if (out.ids) files.ids = out.ids.length;
    if (out.ndjson) files.ndjson = out.ndjson.length;
    files.skipped = out.skipped.length;
    const manifest: ShardManifest = {
      version: 1,
      shard: range,
      total: input.total,
      input: input.fingerprint,
      options,
      records,
      rows,
      skipped,
      files,
    };
    await writeFileAtomic(plan.files.shard, JSON.stringify(manifest, null, 1) + "\n");
  }
  await fsp.rm(plan.files.state, { force: true });
  const skippedFile = out.skipped.length > 0 ? plan.files.skipped : undefined;
  if (!skippedFile) await fsp.rm(plan.files.skipped, { force: true });
  const files = [...out.npy.map(([, w]) => w.file.path), out.ids?.path, out.ndjson?.path].filter(
    (f): f is string => f !== undefined,
  );
  return {
    input: plan.input,
    format: plan.format,
    total: input.total,
    records,
    embedded: rows,
    skipped,
    ignored: input.ignored,
    resumedFrom,
    seconds: (Date.now() - t0) / 1000,
    rate: (rows - (st?.rows ?? 0)) / Math.max(1e-3, (Date.now() - t0) / 1000),
    files,
    skippedFile,
    ...(range ? { shard: range, shardManifest: plan.files.shard } : {}),
  };
}

/** The one-line summary the CLI prints. */
export function summaryLine(r: EmbedResult): string {
  const fmt = withThousands;
  const done = r.embedded + r.skipped;
  const parts = [`embedded ${fmt(r.embedded)} of ${fmt(done)} images`, `skipped ${fmt(r.skipped)}`];
  if (r.ignored > 0) parts.push(`ignored ${fmt(r.ignored)} non-image files`);
  const resumed = r.resumedFrom > 0 ? `, resumed at record ${fmt(r.resumedFrom)}` : "";
  const shard = !r.shard
    ? ""
    : r.shard.end > r.shard.start
      ? `, shard ${shardName(r.shard)}: records ${fmt(r.shard.start)} to ${fmt(r.shard.end - 1)} of ${fmt(r.total)}`
      : `, shard ${shardName(r.shard)}: no records`;
  return (
    `${parts.join(", ")} (${r.format} input${shard}, ${r.seconds.toFixed(1)} s, ${fmt(Math.round(r.rate))} img/s${resumed}) -> ` +
    r.files.join(", ") +
    (r.skippedFile ? `; skipped list: ${r.skippedFile}` : "")
  );
}
