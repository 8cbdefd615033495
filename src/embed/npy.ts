/**
 * NumPy .npy (format version 1.0) headers for float32 little-endian C-order matrices.
 * The header always takes NPY_HEADER_BYTES bytes (the dictionary is space-padded), so the shape can
 * be rewritten in place as rows are appended.
 */

export const NPY_HEADER_BYTES = 128;
const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

export type NpyDtype = "<f4";

/** The 128-byte header of a [rows, cols] float32 array (rows = 0 is fine). */
export function npyHeader(rows: number, cols: number, descr: NpyDtype = "<f4"): Buffer {
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${rows}, ${cols}), }`;
  const len = NPY_HEADER_BYTES - 10; // magic (6) + version (2) + header length (2)
  if (dict.length + 1 > len) throw new Error(`npy header too long for shape (${rows}, ${cols})`);
  const b = Buffer.alloc(NPY_HEADER_BYTES, 0x20);
  Buffer.from(MAGIC).copy(b, 0);
  b[6] = 1;
  b[7] = 0;
  b.writeUInt16LE(len, 8);
  b.write(dict, 10, "latin1");
  b[NPY_HEADER_BYTES - 1] = 0x0a;
  return b;
}

export interface NpyInfo {
  descr: string;
  fortranOrder: boolean;
  shape: number[];
  /** Byte offset of the data. */
  dataOffset: number;
}

/** Parses a .npy header (versions 1.0 and 2.0/3.0). Throws on anything malformed. */
export function parseNpyHeader(b: Uint8Array): NpyInfo {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (buf.length < 10 || !MAGIC.every((x, i) => buf[i] === x)) throw new Error("not a .npy file (bad magic)");
  const major = buf[6];
  const hlenSize = major === 1 ? 2 : 4;
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = 8 + hlenSize;
  if (buf.length < start + hlen) throw new Error("truncated .npy header");
  const text = buf.toString("latin1", start, start + hlen);
  const m = /^\{'descr': '([^']+)', 'fortran_order': (True|False), 'shape': \(((?:\d+,? ?)*)\), \} *\n$/.exec(
    text,
  );
  if (!m) throw new Error(`unexpected .npy header: ${JSON.stringify(text)}`);
  const shape = m[3]
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
    .map(Number);
  return { descr: m[1], fortranOrder: m[2] === "True", shape, dataOffset: start + hlen };
}
