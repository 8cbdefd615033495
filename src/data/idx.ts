import { gunzipSync } from "node:zlib";
import { readFileSync, existsSync } from "node:fs";
import { InputError } from "../util/errors.js";

/** An IDX array of unsigned bytes (the MNIST family's format). */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

const TYPE_NAMES: Record<number, string> = {
  0x08: "ubyte",
  0x09: "byte",
  0x0b: "short",
  0x0c: "int",
  0x0d: "float",
  0x0e: "double",
};

/**
 * Parses an IDX buffer, gzip-compressed or raw. Only the ubyte element type is accepted
 * (the MNIST family uses nothing else). `name` is used in error messages.
 */
export function parseIdx(buf: Uint8Array, name = "IDX data"): IdxArray {
  let raw = buf;
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      raw = gunzipSync(buf);
    } catch (e) {
      throw new InputError(`${name}: corrupt gzip stream (${(e as Error).message})`);
    }
  }
  if (raw.length < 4) throw new InputError(`${name}: too short for an IDX header (${raw.length} bytes)`);
  if (raw[0] !== 0 || raw[1] !== 0) {
    throw new InputError(`${name}: not an IDX file (magic bytes ${hex(raw, 4)}, expected 00 00 08 0N)`);
  }
  const type = raw[2];
  const ndims = raw[3];
  if (type !== 0x08) {
    throw new InputError(
      `${name}: IDX element type ${TYPE_NAMES[type] ?? `0x${type.toString(16)}`} is not supported (only ubyte)`,
    );
  }
  if (ndims < 1 || ndims > 4)
    throw new InputError(`${name}: IDX header declares ${ndims} dimensions (1-4 expected)`);
  const headerLen = 4 + 4 * ndims;
  if (raw.length < headerLen) throw new InputError(`${name}: truncated IDX header`);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const expected = dims.reduce((a, b) => a * b, 1);
  const actual = raw.length - headerLen;
  if (actual !== expected) {
    throw new InputError(
      `${name}: IDX header says ${dims.join("x")} = ${expected} bytes of data but the file has ${actual}` +
        (actual < expected ? " (truncated?)" : ""),
    );
  }
  return { dims, data: raw.subarray(headerLen) };
}

export function readIdxFile(path: string): IdxArray {
  if (!existsSync(path)) throw new InputError(`missing data file: ${path}`);
  return parseIdx(readFileSync(path), path);
}

function hex(b: Uint8Array, n: number): string {
  return Array.from(b.subarray(0, n), (x) => x.toString(16).padStart(2, "0")).join(" ");
}
