/**
 * A minimal MATLAB Level 5 MAT-file writer for tests: numeric arrays (optionally stored in a smaller
 * data type than their class, as MATLAB does), both byte orders, optional miCOMPRESSED wrapping, and
 * optional small-data-element tags. `data` is in MATLAB's column-major order.
 */
import { deflateSync } from "node:zlib";

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
} as const;
export const MX = {
  CELL: 1,
  STRUCT: 2,
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

export interface MatVar {
  name: string;
  /** Array class (MX.*). */
  cls: number;
  dims: number[];
  /** Column-major values; omitted for cell/struct placeholders (written with no contents). */
  data?: ArrayLike<number>;
  /** Data type of the real part (MI.*); default the class's own type. */
  storeAs?: number;
  /** Also write an imaginary part (all zeros) and set the complex flag. */
  complex?: boolean;
}

export interface WriteOptions {
  bigEndian?: boolean;
  compress?: boolean;
  /** Use the 4-byte small-data-element form for data of <= 4 bytes (default true, as MATLAB). */
  small?: boolean;
  headerText?: string;
}

const OWN_TYPE: Record<number, number> = {
  6: 9,
  7: 7,
  8: 1,
  9: 2,
  10: 3,
  11: 4,
  12: 5,
  13: 6,
  14: 12,
  15: 13,
};
const SIZE: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8 };

function encodeValues(type: number, values: ArrayLike<number>, le: boolean): Uint8Array {
  const size = SIZE[type];
  const out = new Uint8Array(values.length * size);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    const o = i * size;
    if (type === MI.INT8) dv.setInt8(o, v);
    else if (type === MI.UINT8) dv.setUint8(o, v);
    else if (type === MI.INT16) dv.setInt16(o, v, le);
    else if (type === MI.UINT16) dv.setUint16(o, v, le);
    else if (type === MI.INT32) dv.setInt32(o, v, le);
    else if (type === MI.UINT32) dv.setUint32(o, v, le);
    else if (type === MI.SINGLE) dv.setFloat32(o, v, le);
    else if (type === MI.INT64) dv.setBigInt64(o, BigInt(v), le);
    else if (type === MI.UINT64) dv.setBigUint64(o, BigInt(v), le);
    else dv.setFloat64(o, v, le);
  }
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** One data element: 8-byte tag + data padded to 8, or the 4-byte small form. */
export function element(type: number, data: Uint8Array, le: boolean, small: boolean): Uint8Array {
  if (small && data.length <= 4) {
    const out = new Uint8Array(8);
    new DataView(out.buffer).setUint32(0, (data.length << 16) | type, le);
    out.set(data, 4);
    return out;
  }
  const padded = Math.ceil(data.length / 8) * 8;
  const out = new Uint8Array(8 + padded);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, type, le);
  dv.setUint32(4, data.length, le);
  out.set(data, 8);
  return out;
}

export function matrixElement(v: MatVar, le: boolean, small: boolean): Uint8Array {
  const flags = new Uint8Array(8);
  new DataView(flags.buffer).setUint32(0, v.cls | (v.complex ? 0x0800 : 0), le);
  const dims = encodeValues(MI.INT32, v.dims, le);
  const parts = [
    element(MI.UINT32, flags, le, false),
    element(MI.INT32, dims, le, false),
    element(MI.INT8, new Uint8Array(Buffer.from(v.name, "latin1")), le, small),
  ];
  if (v.data) {
    const type = v.storeAs ?? OWN_TYPE[v.cls];
    parts.push(element(type, encodeValues(type, v.data, le), le, small));
    if (v.complex)
      parts.push(element(type, encodeValues(type, new Array(v.data.length).fill(0), le), le, small));
  }
  const body = concat(parts);
  return element(14, body, le, false);
}

export function matHeader(
  le: boolean,
  text = "MATLAB 5.0 MAT-file, written by the EquiVAE tests",
): Uint8Array {
  const h = new Uint8Array(128).fill(0x20);
  h.set(Buffer.from(text.padEnd(116, " ").slice(0, 116), "latin1"));
  h.fill(0, 116, 124);
  const dv = new DataView(h.buffer);
  dv.setUint16(124, 0x0100, le);
  dv.setUint16(126, 0x4d49, le); // 'M','I' as one int16: the bytes read "IM" little-endian, "MI" big-endian
  return h;
}

export function writeMat(vars: MatVar[], opts: WriteOptions = {}): Uint8Array {
  const le = !opts.bigEndian;
  const small = opts.small ?? true;
  const parts = [matHeader(le, opts.headerText)];
  for (const v of vars) {
    const el = matrixElement(v, le, small);
    if (!opts.compress) {
      parts.push(el);
      continue;
    }
    const z = deflateSync(el);
    const tag = new Uint8Array(8);
    const dv = new DataView(tag.buffer);
    dv.setUint32(0, 15, le);
    dv.setUint32(4, z.length, le);
    parts.push(tag, z); // compressed elements are not padded
  }
  return concat(parts);
}

/** SVHN-style X (uint8 32x32x3xN, column-major) where X(r, c, ch, n) = svhnPixel(r, c, ch, n). */
export function svhnPixel(r: number, c: number, ch: number, n: number): number {
  return (r * 7 + c * 3 + ch * 50 + n * 11) & 255;
}

export function svhnX(n: number, side = 32): Uint8Array {
  const out = new Uint8Array(side * side * 3 * n);
  let i = 0;
  for (let k = 0; k < n; k++)
    for (let ch = 0; ch < 3; ch++)
      for (let c = 0; c < side; c++) for (let r = 0; r < side; r++) out[i++] = svhnPixel(r, c, ch, k);
  return out;
}

/** An SVHN-layout file: X uint8 [32,32,3,N] and y double [N,1] (stored as `yStoreAs`). */
export function svhnMat(labels: number[], opts: WriteOptions & { yStoreAs?: number } = {}): Uint8Array {
  const n = labels.length;
  return writeMat(
    [
      { name: "X", cls: MX.UINT8, dims: [32, 32, 3, n], data: svhnX(n) },
      { name: "y", cls: MX.DOUBLE, dims: [n, 1], data: labels, storeAs: opts.yStoreAs },
    ],
    opts,
  );
}
