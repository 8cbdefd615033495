/**
 * Inputs of the batch embedder, read as a stream of records in a stable order:
 *  - idx: an IDX file of unsigned bytes ([N, H, W] or [N, H, W, C]), .gz or raw; ids are 0-based indices;
 *  - dir: a directory tree of .png/.jpg/.jpeg/.webp/.gif files, walked as src/input/image-folder.ts
 *    walks one (depth-first, names by Unicode code point, hidden ones left out); ids are the relative
 *    paths ("/"-separated);
 *  - ndjson: one image per line, {"id": ..., "image": base64 or data URI}, a JSON string, or bare
 *    base64; the id defaults to the 1-based line number. Blank lines are ignored.
 * A record that cannot be read or decoded is reported as skipped, never fatal.
 */
import { createHash } from "node:crypto";
import { createReadStream, promises as fsp } from "node:fs";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { hasIdxMagic } from "../input/idx.js";
import { isImageName, walkFolder } from "../input/image-folder.js";
import { InputError, errorMessage } from "../util/errors.js";
import { DecodeError, decodeImage, toModel, type ModelShape } from "./decode.js";
import { IdxRecordReader, readIdxHeader } from "./idx-stream.js";

export type InputFormat = "idx" | "dir" | "ndjson";
export const INPUT_FORMATS: InputFormat[] = ["idx", "dir", "ndjson"];

export interface Skipped {
  id: string;
  reason: string;
}

/** The next records of an input: the images that decoded (packed [k, H, W, C]) and the ones skipped. */
export interface Batch {
  /** Input records consumed (images + skipped + ignored lines). */
  records: number;
  ids: string[];
  pixels: Float32Array;
  skipped: Skipped[];
}

export interface RecordReader {
  /** Up to `max` records; null at the end of the input. */
  next(max: number): Promise<Batch | null>;
  close(): void;
}

export interface Input {
  format: InputFormat;
  path: string;
  /** Records in the input (ndjson: lines; dir: image files). */
  total: number;
  /** dir: files without an image extension (not records). */
  ignored: number;
  /** Identifies the input for --resume (compared as JSON). */
  fingerprint: Record<string, unknown>;
  open(start: number): Promise<RecordReader>;
}

/** Picks the input format: --format, else a directory, else the file name, else the first bytes. */
export async function detectFormat(path: string, flag?: string): Promise<InputFormat> {
  if (flag !== undefined && !INPUT_FORMATS.includes(flag as InputFormat)) {
    throw new InputError(`unknown input format '${flag}' (choose ${INPUT_FORMATS.join(", ")})`);
  }
  let st;
  try {
    st = await fsp.stat(path);
  } catch {
    throw new InputError(`input not found: ${path}`);
  }
  const fmt = flag as InputFormat | undefined;
  if (st.isDirectory()) {
    if (fmt !== undefined && fmt !== "dir") throw new InputError(`${path} is a directory, not ${fmt} input`);
    return "dir";
  }
  if (fmt === "dir") throw new InputError(`${path} is not a directory (--format dir)`);
  if (fmt !== undefined) return fmt;
  const name = path.toLowerCase().replace(/\.gz$/, "");
  if (/\.(ndjson|jsonl)$/.test(name)) return "ndjson";
  if (/idx\d-ubyte$|\.idx\d?$/.test(name)) return "idx";
  const fh = await fsp.open(path, "r");
  const b = Buffer.alloc(4);
  try {
    await fh.read(b, 0, 4, 0);
  } finally {
    await fh.close();
  }
  if (hasIdxMagic(b)) return "idx";
  throw new InputError(
    `cannot tell the format of ${path} from its name; pass --format ${INPUT_FORMATS.join("|")}`,
  );
}

export async function openInput(path: string, format: InputFormat, model: ModelShape): Promise<Input> {
  path = resolve(path);
  if (format === "idx") return idxInput(path, model);
  if (format === "dir") return dirInput(path, model);
  return ndjsonInput(path, model);
}

// ---------------------------------------------------------------------------------------------- idx

function idxConverter(
  path: string,
  dims: number[],
  model: ModelShape,
): (rec: Uint8Array, out: Float32Array) => void {
  const [, ih, iw, ic = 1] = dims;
  if (dims.length < 3 || (ic !== 1 && ic !== 3)) {
    throw new InputError(
      `${path}: IDX images must be [N, H, W] or [N, H, W, C] with C = 1 or 3 (got ${dims.join("x")})`,
    );
  }
  if (ih === model.height && iw === model.width && ic === model.channels) {
    return (rec, out) => {
      for (let i = 0; i < rec.length; i++) out[i] = rec[i] / 255;
    };
  }
  const rgba = new Uint8Array(ih * iw * 4);
  return (rec, out) => {
    for (let p = 0; p < ih * iw; p++) {
      for (let k = 0; k < 3; k++) rgba[p * 4 + k] = rec[p * ic + (ic === 1 ? 0 : k)];
      rgba[p * 4 + 3] = 255;
    }
    toModel(rgba, ih, iw, ic === 1, model, out);
  };
}

async function idxInput(path: string, model: ModelShape): Promise<Input> {
  const h = await readIdxHeader(path);
  const convert = idxConverter(path, h.dims, model);
  const st = await fsp.stat(path);
  const px = model.height * model.width * model.channels;
  return {
    format: "idx",
    path,
    total: h.count,
    ignored: 0,
    fingerprint: { path, size: st.size, mtimeMs: st.mtimeMs, dims: h.dims },
    async open(start) {
      const r = await IdxRecordReader.open(path, start, h);
      let index = start;
      return {
        async next(max) {
          const bytes = await r.read(max);
          const k = bytes.length / h.recordBytes;
          if (k === 0) return null;
          const pixels = new Float32Array(k * px);
          const ids: string[] = [];
          for (let i = 0; i < k; i++) {
            convert(
              bytes.subarray(i * h.recordBytes, (i + 1) * h.recordBytes),
              pixels.subarray(i * px, (i + 1) * px),
            );
            ids.push(String(index + i));
          }
          index += k;
          return { records: k, ids, pixels, skipped: [] };
        },
        close: () => r.close(),
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------- dir

interface WalkEntry {
  rel: string;
  image: boolean;
  error?: string;
}

/** The walk's files, and its directories that could not be listed (records that fail to read). */
async function* walk(root: string): AsyncGenerator<WalkEntry> {
  for await (const e of walkFolder(root)) {
    if (e.error !== undefined) yield { rel: e.rel, image: true, error: e.error };
    else if (e.kind === "file") yield { rel: e.rel, image: isImageName(e.rel) };
  }
}

async function dirInput(root: string, model: ModelShape): Promise<Input> {
  // A first pass counts the records (for the progress bar) and fingerprints the listing.
  let total = 0;
  let ignored = 0;
  const hash = createHash("sha256");
  for await (const e of walk(root)) {
    if (!e.image) {
      ignored++;
      continue;
    }
    total++;
    hash.update(e.rel).update("\n");
  }
  const px = model.height * model.width * model.channels;
  return {
    format: "dir",
    path: root,
    total,
    ignored,
    fingerprint: { path: root, files: total, listingSha256: hash.digest("hex") },
    async open(start) {
      const it = walk(root);
      let skip = start;
      const nextImage = async (): Promise<WalkEntry | undefined> => {
        for (;;) {
          const r = await it.next();
          if (r.done) return undefined;
          if (r.value.image) return r.value;
        }
      };
      while (skip > 0 && (await nextImage()) !== undefined) skip--;
      return {
        async next(max) {
          const entries: WalkEntry[] = [];
          while (entries.length < max) {
            const e = await nextImage();
            if (e === undefined) break;
            entries.push(e);
          }
          if (entries.length === 0) return null;
          const pixels = new Float32Array(entries.length * px);
          const ids: string[] = [];
          const skipped: Skipped[] = [];
          // Read a few files ahead of the decoder.
          const read = (e: WalkEntry) =>
            e.error !== undefined
              ? Promise.reject(new DecodeError(e.error))
              : fsp.readFile(join(root, e.rel)).catch((err: unknown) => {
                  throw new DecodeError(`cannot read (${errorMessage(err)})`);
                });
          const AHEAD = 8;
          const pending = entries.slice(0, AHEAD).map(read);
          pending.forEach((p) => p.catch(() => undefined));
          for (let i = 0; i < entries.length; i++) {
            if (i + AHEAD < entries.length) {
              const p = read(entries[i + AHEAD]);
              p.catch(() => undefined);
              pending.push(p);
            }
            const id = entries[i].rel;
            try {
              if (/[\r\n]/.test(id)) throw new DecodeError("the file name contains a line break");
              const buf = await pending[i];
              await decodeImage(buf, model, pixels.subarray(ids.length * px, (ids.length + 1) * px));
              ids.push(id);
            } catch (e) {
              skipped.push({ id, reason: errorMessage(e) });
            }
            (pending as unknown[])[i] = undefined;
          }
          return { records: entries.length, ids, pixels: pixels.subarray(0, ids.length * px), skipped };
        },
        close: () => void it.return(undefined),
      };
    },
  };
}

// ------------------------------------------------------------------------------------------- ndjson

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const BASE64URL = /^[A-Za-z0-9_-]*={0,2}$/;

/** Decodes base64 (standard or URL-safe) or a data URI (data:image/png;base64,...). */
export function decodeBase64(s: string): Buffer {
  let body = s;
  if (s.startsWith("data:")) {
    const m = /^data:([^,;]*)(;[^,]*)?,(.*)$/s.exec(s);
    if (!m || !(m[2] ?? "").split(";").includes("base64"))
      throw new DecodeError("a data URI must be 'data:<type>;base64,<data>'");
    body = m[3];
  }
  body = body.replace(/\s+/g, "");
  const std = BASE64.test(body);
  if (body.length === 0 || (!std && !BASE64URL.test(body)) || body.length % 4 === 1)
    throw new DecodeError("not valid base64");
  return Buffer.from(body, std ? "base64" : "base64url");
}

/** One NDJSON line -> id and image bytes (throws DecodeError with the id it could find). */
function parseLine(line: string, lineNo: number): { id: string; image: () => Buffer } {
  const t = line.trim();
  let id = String(lineNo);
  let data: unknown;
  if (t.startsWith("{") || t.startsWith('"')) {
    try {
      data = JSON.parse(t);
    } catch (e) {
      return { id, image: () => fail(`line ${lineNo}: not valid JSON (${errorMessage(e)})`) };
    }
  } else data = t;
  if (typeof data === "object" && data !== null && !Array.isArray(data)) {
    const o = data as Record<string, unknown>;
    if (typeof o.id === "string" || typeof o.id === "number") id = String(o.id);
    else if (o.id !== undefined && o.id !== null)
      return { id, image: () => fail(`line ${lineNo}: 'id' must be a string or a number`) };
    if (/[\r\n]/.test(id))
      return { id: String(lineNo), image: () => fail(`line ${lineNo}: the id contains a line break`) };
    if (typeof o.image !== "string") return { id, image: () => fail(`line ${lineNo}: no 'image' string`) };
    const s = o.image;
    return { id, image: () => decodeBase64(s) };
  }
  if (typeof data === "string") {
    const s = data;
    return { id, image: () => decodeBase64(s) };
  }
  return { id, image: () => fail(`line ${lineNo}: expected an object {id, image} or a string`) };
}

function fail(msg: string): never {
  throw new DecodeError(msg);
}

async function countLines(path: string): Promise<number> {
  let n = 0;
  let last = 0x0a;
  for await (const c of createReadStream(path, { highWaterMark: 1 << 20 })) {
    const b = c as Buffer;
    let i = -1;
    while ((i = b.indexOf(0x0a, i + 1)) !== -1) n++;
    if (b.length > 0) last = b[b.length - 1];
  }
  return last === 0x0a ? n : n + 1;
}

async function ndjsonInput(path: string, model: ModelShape): Promise<Input> {
  const st = await fsp.stat(path);
  const total = await countLines(path);
  const px = model.height * model.width * model.channels;
  return {
    format: "ndjson",
    path,
    total,
    ignored: 0,
    fingerprint: { path, size: st.size, mtimeMs: st.mtimeMs },
    async open(start) {
      const stream = createReadStream(path, { highWaterMark: 1 << 20 });
      const rl = createInterface({ input: stream, crlfDelay: Infinity });
      const it = rl[Symbol.asyncIterator]();
      let lineNo = 0;
      while (lineNo < start) {
        if ((await it.next()).done) break;
        lineNo++;
      }
      return {
        async next(max) {
          const pixels = new Float32Array(max * px);
          const ids: string[] = [];
          const skipped: Skipped[] = [];
          let records = 0;
          while (records < max) {
            const r = await it.next();
            if (r.done) break;
            records++;
            lineNo++;
            if (r.value.trim() === "") continue;
            const { id, image } = parseLine(r.value, lineNo);
            try {
              await decodeImage(image(), model, pixels.subarray(ids.length * px, (ids.length + 1) * px));
              ids.push(id);
            } catch (e) {
              skipped.push({ id, reason: errorMessage(e) });
            }
          }
          if (records === 0) return null;
          return { records, ids, pixels: pixels.subarray(0, ids.length * px), skipped };
        },
        close: () => {
          rl.close();
          stream.destroy();
        },
      };
    },
  };
}
