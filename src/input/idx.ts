/**
 * The IDX format (the MNIST family's), gzip-compressed or raw: one header check for the training
 * loaders, which read a file whole (readIdxFile), and for `embed`, which streams its records
 * (src/embed/idx-stream.ts). Only the unsigned-byte element type is accepted: the MNIST family
 * uses nothing else.
 */
import { existsSync, readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { InputError, errorMessage } from "../util/errors.js";

export interface IdxHeader {
  dims: number[];
  /** Bytes before the first record (4 + 4 * ndims). */
  headerBytes: number;
  /** Bytes per record (the product of dims[1..]). */
  recordBytes: number;
  /** Records (dims[0]). */
  count: number;
}

/** An IDX array read whole. */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

const UBYTE = 0x08;

const TYPE_NAMES: Record<number, string> = {
  0x08: "ubyte",
  0x09: "byte",
  0x0b: "short",
  0x0c: "int",
  0x0d: "float",
  0x0e: "double",
};

export function isGzip(b: Uint8Array): boolean {
  return b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;
}

/** Whether the bytes start with the magic number of an IDX file of unsigned bytes. */
export function hasIdxMagic(b: Uint8Array): boolean {
  return b.length >= 3 && b[0] === 0 && b[1] === 0 && b[2] === UBYTE;
}

/** Whether `head` (the first decompressed bytes) holds the whole header, so parseIdxHeader can judge it. */
export function holdsIdxHeader(head: Uint8Array): boolean {
  return head.length >= 4 && head.length >= 4 + 4 * head[3];
}

/** Parses and checks the header at the start of `head` (decompressed); `name` is used in error messages. */
export function parseIdxHeader(head: Uint8Array, name: string): IdxHeader {
  if (head.length < 4) throw new InputError(`${name}: too short for an IDX header (${head.length} bytes)`);
  if (head[0] !== 0 || head[1] !== 0) {
    throw new InputError(`${name}: not an IDX file (magic bytes ${hex(head, 4)}, expected 00 00 08 0N)`);
  }
  const type = head[2];
  if (type !== UBYTE) {
    throw new InputError(
      `${name}: IDX element type ${TYPE_NAMES[type] ?? `0x${type.toString(16)}`} is not supported (only ubyte)`,
    );
  }
  const ndims = head[3];
  if (ndims < 1 || ndims > 4)
    throw new InputError(`${name}: IDX header declares ${ndims} dimensions (1-4 expected)`);
  const headerBytes = 4 + 4 * ndims;
  if (head.length < headerBytes) throw new InputError(`${name}: truncated IDX header`);
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const dims = Array.from({ length: ndims }, (_, i) => view.getUint32(4 + 4 * i, false));
  const recordBytes = dims.slice(1).reduce((a, b) => a * b, 1);
  return { dims, headerBytes, recordBytes, count: dims[0] };
}

/** Throws unless the bytes after the header (`dataBytes`) are exactly what the header declares. */
export function checkIdxDataLength(name: string, h: IdxHeader, dataBytes: number, compressed: boolean): void {
  const expected = h.count * h.recordBytes;
  if (dataBytes === expected) return;
  throw new InputError(
    `${name}: IDX header says ${h.dims.join("x")} = ${expected} bytes of data but the ` +
      `${compressed ? "decompressed " : ""}file has ${dataBytes}` +
      (dataBytes < expected ? " (truncated?)" : ""),
  );
}

/** Gunzips a gzip-compressed buffer; returns a raw one as it is. */
function decompressed(buf: Uint8Array, name: string): Uint8Array {
  if (!isGzip(buf)) return buf;
  try {
    return gunzipSync(buf);
  } catch (e) {
    throw new InputError(`${name}: corrupt gzip stream (${errorMessage(e)})`);
  }
}

/** Parses a whole IDX buffer, gzip-compressed or raw; `name` is used in error messages. */
export function parseIdx(buf: Uint8Array, name = "IDX data"): IdxArray {
  const raw = decompressed(buf, name);
  const h = parseIdxHeader(raw, name);
  checkIdxDataLength(name, h, raw.length - h.headerBytes, raw !== buf);
  return { dims: h.dims, data: raw.subarray(h.headerBytes) };
}

/** Reads a whole IDX file (the training loaders keep every image in memory anyway). */
export function readIdxFile(path: string): IdxArray {
  if (!existsSync(path)) throw new InputError(`missing data file: ${path}`);
  return parseIdx(readFileSync(path), path);
}

function hex(b: Uint8Array, n: number): string {
  return Array.from(b.subarray(0, n), (x) => x.toString(16).padStart(2, "0")).join(" ");
}
