/**
 * `equivae embed merge --output OUT PART...`: joins the outputs of the N shards of a sharded
 * `embed --shard I/N` run into exactly the files one unsharded run writes, byte for byte.
 *
 * Shards are contiguous ranges of the input's record order (shard.ts), so every output is a
 * concatenation in shard order: each .npy is a new 128-byte header with the total row count and
 * then every part's rows; `.ids.txt`, NDJSON and `.skipped.txt` are the parts one after another
 * (the skipped list only when something was skipped, as an unsharded run). Rows are copied in
 * chunks, so memory stays flat whatever the size. Each output is written to a temporary file in
 * the output directory, fsynced, and renamed into place once all of them are complete.
 *
 * Before writing anything it checks that the parts belong together: every part finished (its
 * `.shard.json` is there, no `.progress.json` is left), the same input fingerprint, model, options
 * and N, every shard 0..N-1 exactly once, ranges that tile the input, and every file still the
 * length its shard recorded. The first problem is one InputError naming it.
 */
import { closeSync, existsSync, promises as fsp, openSync, readSync, statSync } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { isDeepStrictEqual } from "node:util";
import { InputError, errorMessage } from "../util/errors.js";
import { NPY_HEADER_BYTES, npyHeader, parseNpyHeader } from "./npy.js";
import { REPS, outputFormatOf, withThousands, type OutputFormat, type Rep } from "./outputs.js";
import { outputFiles, type OutputFiles } from "./run.js";
import { readShardManifest, shardManifestPath, shardName, shardRange, type ShardManifest } from "./shard.js";

export interface MergeOptions {
  /** Where the merged outputs go, named as for an unsharded run (out.npy or out.ndjson). */
  output: string;
  /** Each shard's --output (or its `.shard.json`), in any order. */
  parts: string[];
  /** npy | ndjson; from the output's extension when undefined. */
  outputFormat?: string;
  /** Overwrite existing outputs. */
  force?: boolean;
}

export interface MergeResult {
  shards: number;
  /** Records of the input. */
  total: number;
  embedded: number;
  skipped: number;
  seconds: number;
  files: string[];
  skippedFile?: string;
}

interface Part {
  path: string;
  manifest: ShardManifest;
  files: OutputFiles;
}

const CHUNK = 4 << 20;

function loadPart(arg: string): Omit<Part, "files"> {
  const path = resolve(arg.replace(/\.shard\.json$/, ""));
  const manifestPath = shardManifestPath(path);
  if (existsSync(`${path}.progress.json`))
    throw new InputError(
      `${path} is not complete: ${basename(path)}.progress.json is left (an interrupted shard: finish it with 'embed ... --resume')`,
    );
  if (!existsSync(manifestPath))
    throw new InputError(
      `${path} is not a finished shard: no ${basename(manifestPath)} (name each shard's --output of 'embed --shard I/N')`,
    );
  return { path, manifest: readShardManifest(manifestPath) };
}

function checkTogether(parts: Array<Omit<Part, "files">>): void {
  const [a] = parts;
  for (const b of parts.slice(1)) {
    const pa = `${a.path} (shard ${shardName(a.manifest.shard)})`;
    const pb = `${b.path} (shard ${shardName(b.manifest.shard)})`;
    if (b.manifest.shard.count !== a.manifest.shard.count)
      throw new InputError(`${pa} and ${pb} are parts of different splits`);
    if (!isDeepStrictEqual(b.manifest.input, a.manifest.input) || b.manifest.total !== a.manifest.total)
      throw new InputError(
        `${pa} and ${pb} are shards of different inputs (or the input changed between them)`,
      );
    const keys = new Set([...Object.keys(a.manifest.options), ...Object.keys(b.manifest.options)]);
    for (const k of keys) {
      if (!isDeepStrictEqual(a.manifest.options[k], b.manifest.options[k]))
        throw new InputError(
          `${pa} and ${pb} differ in ${k === "model" ? "the model" : k} (${JSON.stringify(a.manifest.options[k])}, ${JSON.stringify(b.manifest.options[k])})`,
        );
    }
  }
  const n = a.manifest.shard.count;
  const byIndex = new Map<number, string>();
  for (const p of parts) {
    const i = p.manifest.shard.index;
    const other = byIndex.get(i);
    if (other !== undefined)
      throw new InputError(`shard ${shardName(p.manifest.shard)} is given twice: ${other} and ${p.path}`);
    byIndex.set(i, p.path);
  }
  const missing = Array.from({ length: n }, (_, i) => i).filter((i) => !byIndex.has(i));
  if (missing.length > 0)
    throw new InputError(
      `shard${missing.length > 1 ? "s" : ""} ${missing.map((i) => `${i}/${n}`).join(", ")} ` +
        `${missing.length > 1 ? "are" : "is"} missing (${parts.length} of ${n} parts given)`,
    );
  const batchSize = a.manifest.options.batchSize as number;
  for (const p of parts) {
    const want = shardRange(p.manifest.shard, p.manifest.total, batchSize);
    if (!isDeepStrictEqual(p.manifest.shard, want) || p.manifest.records !== want.end - want.start)
      throw new InputError(
        `${shardManifestPath(p.path)}: its record range does not match shard ${shardName(want)}`,
      );
  }
}

/** The part's files exist with the lengths its shard recorded; returns the .npy column counts. */
function checkFiles(p: Part): Partial<Record<Rep, number>> {
  const m = p.manifest;
  const size = (path: string) => (existsSync(path) ? statSync(path).size : undefined);
  const expect = (role: string, path: string | undefined, optional = false) => {
    if (path === undefined) return;
    const want = m.files[role];
    const got = size(path);
    if (typeof want !== "number")
      throw new InputError(`${shardManifestPath(p.path)}: no length recorded for ${basename(path)}`);
    if (got === undefined && !(optional && want === 0))
      throw new InputError(`${path} is missing (shard ${shardName(m.shard)})`);
    if (got !== undefined && got !== want)
      throw new InputError(
        `${path} has ${got} bytes, its shard recorded ${want}: changed since shard ${shardName(m.shard)} finished`,
      );
  };
  const cols: Partial<Record<Rep, number>> = {};
  for (const [r, path] of Object.entries(p.files.npy) as Array<[Rep, string]>) {
    expect(r, path);
    cols[r] = npyColumns(path, m.rows);
  }
  expect("ids", p.files.ids);
  expect("ndjson", p.files.ndjson);
  expect("skipped", p.files.skipped, true);
  return cols;
}

function npyColumns(path: string, rows: number): number {
  const b = Buffer.alloc(NPY_HEADER_BYTES);
  let h;
  try {
    const fd = openSync(path, "r");
    try {
      h = parseNpyHeader(b.subarray(0, readSync(fd, b, 0, b.length, 0)));
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    throw new InputError(`${path}: not a .npy part (${errorMessage(e)})`);
  }
  if (h.descr !== "<f4" || h.fortranOrder || h.shape.length !== 2 || h.dataOffset !== NPY_HEADER_BYTES)
    throw new InputError(`${path}: not a float32 [rows, cols] .npy written by embed`);
  if (h.shape[0] !== rows) throw new InputError(`${path}: ${h.shape[0]} rows, its shard recorded ${rows}`);
  return h.shape[1];
}

/** Appends bytes [from, from + length) of `src` to `dst` at `at`, a chunk at a time; returns the new end. */
async function copyRange(
  dst: FileHandle,
  at: number,
  src: string,
  from: number,
  length: number,
  buf: Buffer,
): Promise<number> {
  const fh = await fsp.open(src, "r");
  try {
    let done = 0;
    while (done < length) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, length - done), from + done);
      if (bytesRead === 0) throw new InputError(`${src} ended early (changed while merging?)`);
      await writeAll(dst, buf.subarray(0, bytesRead), at + done);
      done += bytesRead;
    }
  } finally {
    await fh.close();
  }
  return at + length;
}

async function writeAll(fh: FileHandle, b: Uint8Array, at: number): Promise<void> {
  let o = 0;
  while (o < b.length) o += (await fh.write(b, o, b.length - o, at + o)).bytesWritten;
}

/** Checks the parts, then writes the merged outputs. */
export async function mergeShards(o: MergeOptions): Promise<MergeResult> {
  const t0 = Date.now();
  if (o.parts.length === 0)
    throw new InputError(
      "embed merge: name the shard outputs to merge (equivae embed merge --output OUT PART...)",
    );
  const output = resolve(o.output);
  const fmt = outputFormatOf(output, o.outputFormat);

  const loaded = o.parts.map(loadPart);
  checkTogether(loaded);
  const ref = loaded[0].manifest;
  const partsFormat = ref.options.outputFormat as OutputFormat;
  const what = (ref.options.what as Rep[]).filter((r) => REPS.includes(r));
  if (partsFormat !== fmt)
    throw new InputError(
      `the shards wrote ${partsFormat}, the merged output would be ${fmt}: name it .${partsFormat} (or pass --output-format ${partsFormat})`,
    );
  const parts: Part[] = loaded
    .map((p) => ({ ...p, files: outputFiles(p.path, partsFormat, what) }))
    .sort((a, b) => a.manifest.shard.index - b.manifest.shard.index);
  const cols: Partial<Record<Rep, number>> = {};
  for (const p of parts) {
    for (const [r, c] of Object.entries(checkFiles(p)) as Array<[Rep, number]>) {
      if (cols[r] !== undefined && cols[r] !== c)
        throw new InputError(`${p.files.npy[r]}: ${c} columns, other shards ${cols[r]}`);
      cols[r] = c;
    }
  }

  const dir = dirname(output);
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new InputError(`output directory does not exist: ${dir}`);
  const out = outputFiles(output, fmt, what);
  const targets = [...Object.values(out.npy), out.ids, out.ndjson].filter(
    (f): f is string => f !== undefined,
  );
  const partFiles = new Set(
    parts.flatMap((p) =>
      [...Object.values(p.files.npy), p.files.ids, p.files.ndjson, p.files.skipped, p.files.shard].filter(
        (f): f is string => f !== undefined,
      ),
    ),
  );
  for (const f of [...targets, out.skipped])
    if (partFiles.has(f)) throw new InputError(`the merged output would overwrite the shard file ${f}`);
  if (!o.force) {
    const existing = [...targets, out.skipped, out.state, out.shard].filter((f) => existsSync(f));
    if (existing.length > 0) throw new InputError(`${existing[0]} exists (pass --force to overwrite)`);
  }

  const rows = parts.reduce((a, p) => a + p.manifest.rows, 0);
  const skipped = parts.reduce((a, p) => a + p.manifest.skipped, 0);
  const skippedBytes = parts.reduce((a, p) => a + p.manifest.files.skipped, 0);
  // Each output: where it goes, its header (npy), and the byte ranges of the parts that follow.
  const jobs: Array<{
    path: string;
    head?: Buffer;
    pieces: Array<{ src: string; from: number; length: number }>;
  }> = [];
  for (const r of what.filter((x) => out.npy[x] !== undefined))
    jobs.push({
      path: out.npy[r]!,
      head: npyHeader(rows, cols[r]!),
      pieces: parts.map((p) => ({
        src: p.files.npy[r]!,
        from: NPY_HEADER_BYTES,
        length: p.manifest.files[r] - NPY_HEADER_BYTES,
      })),
    });
  const whole = (role: "ids" | "ndjson" | "skipped", path: string) =>
    jobs.push({
      path,
      pieces: parts
        .filter((p) => p.manifest.files[role] > 0)
        .map((p) => ({ src: p.files[role]!, from: 0, length: p.manifest.files[role] })),
    });
  if (out.ids) whole("ids", out.ids);
  if (out.ndjson) whole("ndjson", out.ndjson);
  if (skippedBytes > 0) whole("skipped", out.skipped);

  const buf = Buffer.allocUnsafe(CHUNK);
  const temps: string[] = [];
  try {
    for (const job of jobs) {
      const tmp = join(dirname(job.path), `.${basename(job.path)}.merge-${process.pid}`);
      temps.push(tmp);
      const fh = await fsp.open(tmp, "w");
      try {
        let at = 0;
        if (job.head) {
          await writeAll(fh, job.head, 0);
          at = job.head.length;
        }
        for (const piece of job.pieces)
          at = await copyRange(fh, at, piece.src, piece.from, piece.length, buf);
        await fh.sync();
      } finally {
        await fh.close();
      }
    }
    for (let i = 0; i < jobs.length; i++) await fsp.rename(temps[i], jobs[i].path);
  } catch (e) {
    await Promise.all(temps.map((t) => fsp.rm(t, { force: true })));
    throw e;
  }
  // What an unsharded run leaves: no skipped list when nothing was skipped, no resume state.
  if (skippedBytes === 0) await fsp.rm(out.skipped, { force: true });
  await fsp.rm(out.state, { force: true });
  await fsp.rm(out.shard, { force: true });
  return {
    shards: parts.length,
    total: ref.total,
    embedded: rows,
    skipped,
    seconds: (Date.now() - t0) / 1000,
    files: targets,
    skippedFile: skippedBytes > 0 ? out.skipped : undefined,
  };
}

/** The one-line summary the CLI prints. */
export function mergeSummaryLine(r: MergeResult): string {
  const fmt = withThousands;
  return (
    `merged ${r.shards} shard${r.shards === 1 ? "" : "s"} of ${fmt(r.total)} records: ` +
    `${fmt(r.embedded)} embedded, ${fmt(r.skipped)} skipped (${r.seconds.toFixed(1)} s) -> ` +
    r.files.join(", ") +
    (r.skippedFile ? `; skipped list: ${r.skippedFile}` : "")
  );
}
