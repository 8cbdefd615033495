/**
 * A reader for MATLAB Level 5 MAT-files (the format of `save -v6` / `save -v7`, and of scipy's
 * `savemat(..., format='5')`), enough for numeric arrays such as SVHN's `train_32x32.mat`.
 *
 * Layout (MathWorks, "MAT-File Format", 2023):
 * - a 128-byte header: 116 bytes of text ("MATLAB 5.0 MAT-file, ..."), 8 bytes of subsystem data
 *   offset, a 2-byte version (0x0100) and a 2-byte endian indicator: the characters 'I','M' as read
 *   in the writer's byte order, so the bytes "IM" mean little-endian and "MI" big-endian;
 * - then data elements, each with an 8-byte tag (uint32 data type, uint32 byte count) followed by the
 *   data padded to 8 bytes, or the "small data element" form for data of at most 4 bytes: a 4-byte
 *   tag (the uint32 holds the byte count in its upper and the type in its lower 16 bits) and the
 *   data in the next 4 bytes;
 * - a variable is an miMATRIX element holding sub-elements: array flags (class, complex/logical
 *   bits), dimensions, name, real part (and an imaginary part if complex). The numeric data may be
 *   stored in a smaller type than the array's class (MATLAB writes a double array of small integers
 *   as miUINT8, for instance); values are converted to the class's type here;
 * - `-v7` files wrap each variable in an miCOMPRESSED element (a zlib stream holding one element),
 *   inflated here with node:zlib. Compressed elements are not padded.
 *
 * MATLAB arrays are column-major (Fortran order): element (i0, i1, ..., ik) of an array with
 * dimensions [d0, d1, ..., dk] is at linear index i0 + d0 * (i1 + d1 * (i2 + ...)) of `data`, i.e.
 * the FIRST index varies fastest. `data` is returned in that order, unchanged; see `colMajorIndex`.
 * MATLAB drops trailing singleton dimensions beyond the second (a 32x32x3x1 array is saved as
 * 32x32x3).
 *
 * Not supported (a clear InputError naming the file, and the variable when it is asked for): v4 and
 * v7.3 (HDF5) files; complex, sparse, cell, struct, object and char arrays.
 */
import { existsSync, readFileSync } from "node:fs";
import { inflateSync } from "node:zlib";
import { InputError } from "../util/errors.js";

/** Data types of data elements (the tag's first field). */
export const MI = {
  INT8: 1,
  UINT8: 2,
  INT16: 3,
  UINT16: 4,
  INT32: 5,
  UINT32: 6,
  SINGLE: 7,
  DOUBLE: 9,
  INT64: 12,
  UINT64: 13,
  MATRIX: 14,
  COMPRESSED: 15,
  UTF8: 16,
  UTF16: 17,
  UTF32: 18,
} as const;

/** Array classes (the low byte of the array flags). */
export const MX = {
  CELL: 1,
  STRUCT: 2,
  OBJECT: 3,
  CHAR: 4,
  SPARSE: 5,
  DOUBLE: 6,
  SINGLE: 7,
  INT8: 8,
  UINT8: 9,
  INT16: 10,
  UINT16: 11,
  INT32: 12,
  UINT32: 13,
  INT64: 14,
  UINT64: 15,
} as const;

const CLASS_NAMES: Record<number, string> = {
  1: "cell array",
  2: "struct",
  3: "object",
  4: "char array",
  5: "sparse array",
  6: "double",
  7: "single",
  8: "int8",
  9: "uint8",
  10: "int16",
  11: "uint16",
  12: "int32",
  13: "uint32",
  14: "int64",
  15: "uint64",
  16: "function handle",
  17: "opaque object",
};

const TYPE_NAMES: Record<number, string> = {
  1: "miINT8",
  2: "miUINT8",
  3: "miINT16",
  4: "miUINT16",
  5: "miINT32",
  6: "miUINT32",
  7: "miSINGLE",
  9: "miDOUBLE",
  12: "miINT64",
  13: "miUINT64",
  14: "miMATRIX",
  15: "miCOMPRESSED",
  16: "miUTF8",
  17: "miUTF16",
  18: "miUTF32",
};

/** Bytes per element of the numeric data types read here. */
const TYPE_SIZE: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8 };

export type MatNumericData =
  Float64Array | Float32Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array;

/**
 * A real, full numeric array. `data` is in MATLAB's column-major order (see the module comment), typed
 * after the class (int64/uint64 arrays come back as Float64Array: exact up to 2^53, larger is an error).
 */
export interface MatArray {
  kind: "numeric";
  name: string;
  /** "double", "single", "uint8", ... */
  className: string;
  dims: number[];
  data: MatNumericData;
  logical: boolean;
}

/** A variable this reader does not decode; asking for it with `getArray` is an error saying why. */
export interface MatUnsupported {
  kind: "unsupported";
  name: string;
  /** e.g. "a cell array", "a complex double array". */
  what: string;
  dims: number[];
}

export type MatVariable = MatArray | MatUnsupported;

export interface MatFile {
  /** The path or label used in error messages. */
  file: string;
  /** The header text (e.g. "MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: ..."). */
  header: string;
  littleEndian: boolean;
  variables: Map<string, MatVariable>;
}

export interface MatReadOptions {
  /** Decode only these variables (others are skipped; compressed ones are still inflated to read their names). */
  only?: string[];
}

/** Linear index into column-major `data` of the element with 0-based subscripts `subs`. */
export function colMajorIndex(dims: readonly number[], subs: readonly number[]): number {
  let idx = 0;
  for (let k = subs.length - 1; k >= 0; k--) idx = idx * (k < dims.length ? dims[k] : 1) + subs[k];
  return idx;
}

const V73_HINT =
  "re-save it as a v5/v7 MAT-file: in Python scipy.io.savemat(f, data, format='5'), in MATLAB save(f, '-v7')";
const HDF5_SIG = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

function hasSignature(buf: Uint8Array, at: number, sig: number[]): boolean {
  if (buf.length < at + sig.length) return false;
  return sig.every((b, i) => buf[at + i] === b);
}

/** A MATLAB v4 file starts with a 20-byte header: type MOPT, rows, cols, imagf, name length, then the name. */
function looksLikeV4(buf: Uint8Array): boolean {
  if (buf.length < 20) return false;
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (const le of [true, false]) {
    const type = dv.getInt32(0, le);
    const rows = dv.getInt32(4, le);
    const cols = dv.getInt32(8, le);
    const imag = dv.getInt32(12, le);
    const namlen = dv.getInt32(16, le);
    if (type < 0 || type > 4052) continue;
    const m = Math.floor(type / 1000);
    const o = Math.floor(type / 100) % 10;
    const p = Math.floor(type / 10) % 10;
    const t = type % 10;
    if (m > 4 || o !== 0 || p > 5 || t > 2) continue;
    if (rows < 0 || cols < 0 || (imag !== 0 && imag !== 1) || namlen < 1 || namlen > 4096) continue;
    if (buf.length < 20 + namlen || buf[20 + namlen - 1] !== 0) continue;
    let printable = true;
    for (let i = 20; i < 20 + namlen - 1; i++) if (buf[i] < 0x20 || buf[i] > 0x7e) printable = false;
    if (printable) return true;
  }
  return false;
}

/** Parses a MAT-file held in memory. `file` names it in error messages. */
export function parseMat(buf: Uint8Array, file: string, opts: MatReadOptions = {}): MatFile {
  const text = Buffer.from(buf.buffer, buf.byteOffset, Math.min(buf.length, 116)).toString("latin1");
  if (
    text.startsWith("MATLAB 7.3 MAT-file") ||
    hasSignature(buf, 512, HDF5_SIG) ||
    hasSignature(buf, 0, HDF5_SIG)
  ) {
    throw new InputError(`${file}: a MATLAB v7.3 (HDF5) MAT-file is not supported; ${V73_HINT}`);
  }
  const isMatText = text.startsWith("MATLAB");
  if (!isMatText && looksLikeV4(buf)) {
    throw new InputError(
      `${file}: a MATLAB v4 MAT-file is not supported; re-save it as a v5/v7 MAT-file: ` +
        `in Python scipy.io.savemat(f, data, format='5'), in MATLAB save(f, '-v7')`,
    );
  }
  if (buf.length < 128) {
    if (isMatText)
      throw new InputError(`${file}: truncated MAT-file (${buf.length} bytes, the header alone is 128)`);
    throw new InputError(`${file}: not a MATLAB .mat file (${buf.length} bytes)`);
  }
  const e0 = String.fromCharCode(buf[126], buf[127]);
  if (e0 !== "IM" && e0 !== "MI") {
    throw new InputError(
      isMatText
        ? `${file}: not a valid MAT-file (bad endian indicator "${printable(e0)}" at byte 126, expected "IM" or "MI")`
        : `${file}: not a MATLAB .mat file (no "MATLAB" header text or endian indicator)`,
    );
  }
  const le = e0 === "IM";
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const version = dv.getUint16(124, le);
  if (version !== 0x0100) {
    throw new InputError(
      `${file}: unsupported MAT-file version 0x${version.toString(16).padStart(4, "0")} (expected 0x0100, Level 5)`,
    );
  }
  const out: MatFile = {
    file,
    header: text.replace(/[\s\0]+$/, ""),
    littleEndian: le,
    variables: new Map(),
  };
  const want = opts.only ? new Set(opts.only) : undefined;
  let p = 128;
  while (p < buf.length) {
    if (buf.length - p < 8) {
      // Trailing padding is harmless; anything else is a cut-off tag.
      if (buf.subarray(p).every((b) => b === 0)) break;
      throw new InputError(`${file}: truncated MAT-file (an element tag at byte ${p} is cut off)`);
    }
    const tag = readTag(dv, p, le, file, buf.length);
    const next = tag.small
      ? tag.dataStart + 4
      : tag.dataStart + (tag.type === MI.COMPRESSED ? tag.nbytes : pad8(tag.nbytes));
    if (tag.dataStart + tag.nbytes > buf.length) {
      throw new InputError(
        `${file}: truncated MAT-file (the element at byte ${p} needs ${tag.nbytes} bytes, ` +
          `${buf.length - tag.dataStart} remain)`,
      );
    }
    let body = buf.subarray(tag.dataStart, tag.dataStart + tag.nbytes);
    let type = tag.type;
    let where = `the element at byte ${p}`;
    if (type === MI.COMPRESSED) {
      let raw: Buffer;
      try {
        raw = inflateSync(body);
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        throw new InputError(`${file}: corrupt or truncated compressed element at byte ${p} (zlib: ${msg})`);
      }
      const idv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      where = `the compressed element at byte ${p}`;
      if (raw.length < 8) throw new InputError(`${file}: ${where} inflates to only ${raw.length} bytes`);
      const inner = readTag(idv, 0, le, `${file} (${where})`, raw.length);
      if (inner.dataStart + inner.nbytes > raw.length) {
        throw new InputError(
          `${file}: truncated data in ${where} (needs ${inner.nbytes} bytes, ${raw.length - inner.dataStart} remain)`,
        );
      }
      type = inner.type;
      body = raw.subarray(inner.dataStart, inner.dataStart + inner.nbytes);
    }
    if (type === MI.MATRIX) {
      if (body.length > 0) {
        const v = parseMatrix(body, le, file, where, want);
        if (v && !out.variables.has(v.name)) out.variables.set(v.name, v);
      }
    } else if (!TYPE_NAMES[type]) {
      throw new InputError(`${file}: not a valid MAT-file (unknown data type ${type} in ${where})`);
    }
    // Other top-level elements (loose numeric data, never written by MATLAB) are skipped.
    p = next;
  }
  return out;
}

export function readMatFile(path: string, opts: MatReadOptions = {}): MatFile {
  if (!existsSync(path)) throw new InputError(`missing data file: ${path}`);
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ERR_FS_FILE_TOO_LARGE") throw new InputError(`${path}: files over 2 GiB are not supported`);
    throw new InputError(`${path}: cannot read (${code ?? (e as Error).message})`);
  }
  return parseMat(buf, path, opts);
}

/** The named real numeric array, or a InputError saying it is missing or of an unsupported type. */
export function getArray(mat: MatFile, name: string): MatArray {
  const v = mat.variables.get(name);
  if (!v) {
    const have = [...mat.variables.keys()];
    throw new InputError(
      `${mat.file}: no variable '${name}' (the file holds ${have.length ? have.map((n) => `'${n}'`).join(", ") : "no variables"})`,
    );
  }
  if (v.kind === "unsupported") {
    throw new InputError(
      `${mat.file}: variable '${name}' is ${v.what}; only real, full numeric arrays are supported`,
    );
  }
  return v;
}

interface Tag {
  type: number;
  nbytes: number;
  dataStart: number;
  small: boolean;
}

function readTag(dv: DataView, p: number, le: boolean, file: string, end: number): Tag {
  if (end - p < 4)
    throw new InputError(`${file}: truncated MAT-file (an element tag at byte ${p} is cut off)`);
  const w = dv.getUint32(p, le);
  if (w >>> 16 !== 0) {
    // Small data element: byte count in the upper 16 bits, type in the lower 16, data in the next 4 bytes.
    const nbytes = w >>> 16;
    if (nbytes > 4)
      throw new InputError(`${file}: not a valid MAT-file (bad small element tag at byte ${p})`);
    if (end - p < 8)
      throw new InputError(`${file}: truncated MAT-file (a small element at byte ${p} is cut off)`);
    return { type: w & 0xffff, nbytes, dataStart: p + 4, small: true };
  }
  if (end - p < 8)
    throw new InputError(`${file}: truncated MAT-file (an element tag at byte ${p} is cut off)`);
  return { type: w, nbytes: dv.getUint32(p + 4, le), dataStart: p + 8, small: false };
}

function pad8(n: number): number {
  return Math.ceil(n / 8) * 8;
}

function printable(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, "?");
}

/** Reads the sub-elements of one miMATRIX body. Returns undefined for variables not in `want`. */
function parseMatrix(
  body: Uint8Array,
  le: boolean,
  file: string,
  where: string,
  want: Set<string> | undefined,
): MatVariable | undefined {
  const dv = new DataView(body.buffer, body.byteOffset, body.byteLength);
  let p = 0;
  const sub = (what: string): { type: number; data: Uint8Array } => {
    if (p >= body.length) throw new InputError(`${file}: truncated variable in ${where} (no ${what})`);
    const t = readTag(dv, p, le, `${file} (${where})`, body.length);
    if (t.dataStart + t.nbytes > body.length) {
      throw new InputError(
        `${file}: truncated variable in ${where} (its ${what} needs ${t.nbytes} bytes, ` +
          `${body.length - t.dataStart} remain)`,
      );
    }
    const data = body.subarray(t.dataStart, t.dataStart + t.nbytes);
    p = t.small ? t.dataStart + 4 : t.dataStart + pad8(t.nbytes);
    return { type: t.type, data };
  };
  const flags = sub("array flags");
  if (flags.type !== MI.UINT32 || flags.data.length < 8) {
    throw new InputError(`${file}: not a valid MAT-file (bad array flags in ${where})`);
  }
  const fw = new DataView(flags.data.buffer, flags.data.byteOffset, 8).getUint32(0, le);
  const cls = fw & 0xff;
  const complex = (fw & 0x0800) !== 0;
  const logical = (fw & 0x0200) !== 0;
  // Function handles and opaque objects (classes 16, 17) have a different layout: skipped.
  if (cls === 16 || cls === 17) return undefined;
  const dimsEl = sub("dimensions");
  // MATLAB writes miINT32; some other writers use miUINT32 (accepted, as scipy does).
  const dimsOk = dimsEl.type === MI.INT32 || dimsEl.type === MI.UINT32;
  if (!dimsOk || dimsEl.data.length % 4 !== 0 || dimsEl.data.length < 8) {
    throw new InputError(`${file}: not a valid MAT-file (bad dimensions in ${where})`);
  }
  const ddv = new DataView(dimsEl.data.buffer, dimsEl.data.byteOffset, dimsEl.data.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < dimsEl.data.length; i += 4) {
    const d = dimsEl.type === MI.INT32 ? ddv.getInt32(i, le) : ddv.getUint32(i, le);
    if (d < 0) throw new InputError(`${file}: not a valid MAT-file (negative dimension in ${where})`);
    dims.push(d);
  }
  const nameEl = sub("array name");
  if (nameEl.type !== MI.INT8 && nameEl.type !== MI.UINT8 && nameEl.type !== MI.UTF8) {
    throw new InputError(`${file}: not a valid MAT-file (bad array name in ${where})`);
  }
  const name = Buffer.from(nameEl.data.buffer, nameEl.data.byteOffset, nameEl.data.byteLength).toString(
    nameEl.type === MI.UTF8 ? "utf8" : "latin1",
  );
  if (want && !want.has(name)) return undefined;
  const unsupported = (what: string): MatUnsupported => ({ kind: "unsupported", name, what, dims });
  const cname = CLASS_NAMES[cls];
  if (!cname)
    throw new InputError(`${file}: not a valid MAT-file (unknown array class ${cls} for '${name}')`);
  if (cls <= MX.SPARSE) {
    return unsupported(cls === MX.SPARSE ? `a sparse array` : `a ${cname}`);
  }
  if (complex) return unsupported(`a complex ${cname} array`);
  const count = dims.reduce((a, b) => a * b, 1);
  const real = sub(`real part (${count} values)`);
  const size = TYPE_SIZE[real.type];
  if (!size) {
    return unsupported(`a ${cname} array stored as ${TYPE_NAMES[real.type] ?? `data type ${real.type}`}`);
  }
  if (real.data.length !== count * size) {
    throw new InputError(
      `${file}: variable '${name}' (${dims.join("x")} ${cname}) has ${real.data.length} bytes of ` +
        `${TYPE_NAMES[real.type]} data, expected ${count * size}` +
        (real.data.length < count * size ? " (truncated?)" : ""),
    );
  }
  let data: MatNumericData;
  try {
    data = convert(real.data, real.type, cls, count, le);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    throw new InputError(
      `${file}: variable '${name}' (${cname}) holds an integer beyond 2^53, which this reader cannot represent exactly`,
    );
  }
  return { kind: "numeric", name, className: cname, dims, data, logical };
}

function allocate(cls: number, n: number): MatNumericData {
  switch (cls) {
    case MX.DOUBLE:
      return new Float64Array(n);
    case MX.SINGLE:
      return new Float32Array(n);
    case MX.INT8:
      return new Int8Array(n);
    case MX.UINT8:
      return new Uint8Array(n);
    case MX.INT16:
      return new Int16Array(n);
    case MX.UINT16:
      return new Uint16Array(n);
    case MX.INT32:
      return new Int32Array(n);
    case MX.INT64:
    case MX.UINT64:
      return new Float64Array(n);
    default:
      return new Uint32Array(n);
  }
}

/** Stored values (data type `type`, file byte order) -> a typed array of the class `cls`. */
function convert(src: Uint8Array, type: number, cls: number, n: number, le: boolean): MatNumericData {
  // Same type: a view, no copy (it shares memory with the file or inflated buffer).
  if (type === MI.UINT8 && cls === MX.UINT8) return src;
  if (type === MI.INT8 && cls === MX.INT8) return new Int8Array(src.buffer, src.byteOffset, src.length);
  const out = allocate(cls, n);
  const dv = new DataView(src.buffer, src.byteOffset, src.byteLength);
  const get = getter(type, src, dv, le);
  for (let i = 0; i < n; i++) out[i] = get(i);
  return out;
}

function getter(type: number, src: Uint8Array, dv: DataView, le: boolean): (i: number) => number {
  switch (type) {
    case MI.INT8:
      return (i) => dv.getInt8(i);
    case MI.UINT8:
      return (i) => src[i];
    case MI.INT16:
      return (i) => dv.getInt16(i * 2, le);
    case MI.UINT16:
      return (i) => dv.getUint16(i * 2, le);
    case MI.INT32:
      return (i) => dv.getInt32(i * 4, le);
    case MI.UINT32:
      return (i) => dv.getUint32(i * 4, le);
    case MI.SINGLE:
      return (i) => dv.getFloat32(i * 4, le);
    case MI.INT64:
    case MI.UINT64:
      return (i) => {
        const v = Number(type === MI.INT64 ? dv.getBigInt64(i * 8, le) : dv.getBigUint64(i * 8, le));
        if (!Number.isSafeInteger(v)) throw new RangeError("64-bit integer beyond 2^53");
        return v;
      };
    default:
      return (i) => dv.getFloat64(i * 8, le);
  }
}
