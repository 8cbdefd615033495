/**
 * Output files of the batch embedder, written incrementally with their byte lengths tracked so a
 * resumed run can cut them back to the last checkpoint.
 */
import { promises as fsp } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { endianness } from "node:os";
import { InputError } from "../util/errors.js";
import { NPY_HEADER_BYTES, npyHeader } from "./npy.js";

export type Rep = "v" | "mu" | "logvar" | "class";
export const REPS: Rep[] = ["v", "mu", "logvar", "class"];
export type OutputFormat = "npy" | "ndjson";

/** The output format: `flag` (--output-format), else the output's extension. */
export function outputFormatOf(output: string, flag?: string): OutputFormat {
  let fmt = flag;
  if (fmt === undefined) {
    if (/\.npy$/i.test(output)) fmt = "npy";
    else if (/\.(ndjson|jsonl)$/i.test(output)) fmt = "ndjson";
    else
      throw new InputError(
        `cannot tell the output format of ${output}: name it .npy or .ndjson, or pass --output-format`,
      );
  }
  if (fmt !== "npy" && fmt !== "ndjson")
    throw new InputError(`unknown output format '${fmt}' (choose npy or ndjson)`);
  return fmt;
}

/**
 * An integer with thousands separators, as toLocaleString("en-US") gives it, without the ~10 ms of
 * loading ICU on the first call.
 */
export function withThousands(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** An output file opened for appending, from scratch or cut back to a recorded length. */
export class TrackedFile {
  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    public length: number,
  ) {}

  static async create(path: string): Promise<TrackedFile> {
    return new TrackedFile(path, await fsp.open(path, "w"), 0);
  }

  /** Opens an existing file and truncates it to `length` (it must be at least that long). */
  static async resume(path: string, length: number): Promise<TrackedFile> {
    let fh: FileHandle;
    try {
      fh = await fsp.open(path, "r+");
    } catch {
      throw new InputError(`cannot resume: ${path} is missing`);
    }
    const { size } = await fh.stat();
    if (size < length) {
      await fh.close();
      throw new InputError(`cannot resume: ${path} has ${size} bytes, fewer than the ${length} recorded`);
    }
    await fh.truncate(length);
    return new TrackedFile(path, fh, length);
  }

  async append(data: Uint8Array | string): Promise<void> {
    const b = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    let o = 0;
    while (o < b.length) {
      const { bytesWritten } = await this.fh.write(b, o, b.length - o, this.length + o);
      o += bytesWritten;
    }
    this.length += b.length;
  }

  async writeAt(data: Uint8Array, position: number): Promise<void> {
    await this.fh.write(data, 0, data.length, position);
  }

  async sync(): Promise<void> {
    await this.fh.sync();
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

/** A float32 [rows, cols] .npy whose 128-byte header is rewritten as rows are appended. */
export class NpyWriter {
  rows: number;

  private constructor(
    readonly file: TrackedFile,
    readonly cols: number,
  ) {
    this.rows = (file.length - NPY_HEADER_BYTES) / (4 * cols);
  }

  static async create(path: string, cols: number): Promise<NpyWriter> {
    if (endianness() !== "LE") throw new Error(".npy output needs a little-endian machine");
    const f = await TrackedFile.create(path);
    await f.append(npyHeader(0, cols));
    return new NpyWriter(f, cols);
  }

  static async resume(path: string, cols: number, length: number): Promise<NpyWriter> {
    if (length < NPY_HEADER_BYTES || (length - NPY_HEADER_BYTES) % (4 * cols) !== 0)
      throw new InputError(
        `cannot resume: recorded length ${length} of ${path} is not a whole number of rows`,
      );
    const w = new NpyWriter(await TrackedFile.resume(path, length), cols);
    await w.writeHeader();
    return w;
  }

  async append(rows: Float32Array): Promise<void> {
    if (rows.length % this.cols !== 0) throw new Error(`npy rows of ${this.cols} expected`);
    await this.file.append(new Uint8Array(rows.buffer, rows.byteOffset, rows.byteLength));
    this.rows += rows.length / this.cols;
  }

  /** Rewrites the shape in the header to the rows written so far. */
  async writeHeader(): Promise<void> {
    await this.file.writeAt(npyHeader(this.rows, this.cols), 0);
  }
}
