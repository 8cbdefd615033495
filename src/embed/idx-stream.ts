/**
 * Streaming IDX reader (gzip-compressed or raw): parses the header, then hands out fixed-size
 * records from a (gunzip) stream, never holding more than about one batch plus one chunk.
 */
import { createReadStream, promises as fsp, type ReadStream } from "node:fs";
import { createGunzip, type Gunzip } from "node:zlib";
import { InputError, errorMessage } from "../util/errors.js";

export interface IdxHeader {
  dims: number[];
  /** Bytes before the first record (4 + 4 * ndims). */
  headerBytes: number;
  /** Bytes per record (the product of dims[1..]). */
  recordBytes: number;
  /** Records (dims[0]). */
  count: number;
  gzip: boolean;
}

const CHUNK = 1 << 20;

async function isGzip(path: string): Promise<boolean> {
  const fh = await fsp.open(path, "r");
  try {
    const b = Buffer.alloc(2);
    const { bytesRead } = await fh.read(b, 0, 2, 0);
    return bytesRead === 2 && b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    await fh.close();
  }
}

type ByteStream = ReadStream | Gunzip;

function openStream(path: string, gzip: boolean, start = 0): ByteStream {
  const raw = createReadStream(path, { start: gzip ? 0 : start, highWaterMark: CHUNK });
  if (!gzip) return raw;
  const gz = createGunzip({ chunkSize: 256 * 1024 });
  raw.on("error", (e) => gz.destroy(e));
  return raw.pipe(gz);
}

/** Reads and checks the header (for .gz files, only the first bytes are decompressed). */
export async function readIdxHeader(path: string): Promise<IdxHeader> {
  const gzip = await isGzip(path);
  const s = openStream(path, gzip);
  let head = Buffer.alloc(0);
  try {
    for await (const c of s) {
      head = Buffer.concat([head, c as Buffer]);
      if (head.length >= 4 && head.length >= 4 + 4 * head[3]) break;
    }
  } catch (e) {
    throw new InputError(`${path}: corrupt gzip stream (${errorMessage(e)})`);
  } finally {
    s.destroy();
  }
  if (head.length < 4) throw new InputError(`${path}: too short for an IDX header (${head.length} bytes)`);
  if (head[0] !== 0 || head[1] !== 0 || head[2] !== 0x08) {
    const hex = Array.from(head.subarray(0, 4), (x) => x.toString(16).padStart(2, "0")).join(" ");
    throw new InputError(`${path}: not an IDX file of unsigned bytes (magic ${hex}, expected 00 00 08 0N)`);
  }
  const ndims = head[3];
  if (ndims < 1 || ndims > 4) throw new InputError(`${path}: IDX header declares ${ndims} dimensions (1-4)`);
  const headerBytes = 4 + 4 * ndims;
  if (head.length < headerBytes) throw new InputError(`${path}: truncated IDX header`);
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) dims.push(head.readUInt32BE(4 + 4 * i));
  const recordBytes = dims.slice(1).reduce((a, b) => a * b, 1);
  const h: IdxHeader = { dims, headerBytes, recordBytes, count: dims[0], gzip };
  await checkLength(path, h);
  return h;
}

/** The data length must match the header: the file size (raw) or the gzip trailer's ISIZE (mod 2^32). */
async function checkLength(path: string, h: IdxHeader): Promise<void> {
  const want = h.headerBytes + h.count * h.recordBytes;
  const { size } = await fsp.stat(path);
  let have = size;
  if (h.gzip) {
    const fh = await fsp.open(path, "r");
    try {
      const b = Buffer.alloc(4);
      await fh.read(b, 0, 4, Math.max(0, size - 4));
      have = b.readUInt32LE(0);
    } finally {
      await fh.close();
    }
    if (have === want % 2 ** 32) return;
  } else if (have === want) return;
  throw new InputError(
    `${path}: IDX header says ${h.dims.join("x")} (${want - h.headerBytes} bytes of data) but the ` +
      `${h.gzip ? "decompressed " : ""}file has ${have - h.headerBytes}` +
      (have < want ? " (truncated?)" : ""),
  );
}

/** Fixed-size records of an IDX file from record `start` on. */
export class IdxRecordReader {
  private readonly it: AsyncIterator<Buffer>;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private toSkip: number;
  private ended = false;
  private delivered = 0;

  private constructor(
    readonly path: string,
    readonly header: IdxHeader,
    private readonly stream: ByteStream,
    private readonly start: number,
  ) {
    this.it = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    // A raw file is opened at the record; a gzip stream must be decompressed up to it.
    this.toSkip = header.gzip ? header.headerBytes + start * header.recordBytes : 0;
  }

  static async open(path: string, start = 0, header?: IdxHeader): Promise<IdxRecordReader> {
    const h = header ?? (await readIdxHeader(path));
    if (start > h.count) throw new InputError(`${path}: cannot start at record ${start} of ${h.count}`);
    const s = openStream(path, h.gzip, h.headerBytes + start * h.recordBytes);
    return new IdxRecordReader(path, h, s, start);
  }

  /** Up to `max` records, concatenated ([k * recordBytes] bytes); an empty array at the end. */
  async read(max: number): Promise<Uint8Array> {
    const rb = this.header.recordBytes;
    const left = this.header.count - this.start - this.delivered;
    const k = Math.min(max, left);
    const want = k * rb;
    while (this.pendingBytes < want && !this.ended) {
      let r: IteratorResult<Buffer>;
      try {
        r = await this.it.next();
      } catch (e) {
        throw new InputError(`${this.path}: read error (${errorMessage(e)})`);
      }
      if (r.done) {
        this.ended = true;
        break;
      }
      let c = r.value;
      if (this.toSkip > 0) {
        const s = Math.min(this.toSkip, c.length);
        this.toSkip -= s;
        c = c.subarray(s);
      }
      if (c.length > 0) {
        this.pending.push(c);
        this.pendingBytes += c.length;
      }
    }
    if (this.pendingBytes < want) {
      throw new InputError(
        `${this.path}: truncated IDX data (ends within record ${this.start + this.delivered + Math.floor(this.pendingBytes / rb)} of ${this.header.count})`,
      );
    }
    const out = new Uint8Array(want);
    let o = 0;
    while (o < want) {
      const c = this.pending[0];
      const n = Math.min(c.length, want - o);
      out.set(c.subarray(0, n), o);
      o += n;
      if (n === c.length) this.pending.shift();
      else this.pending[0] = c.subarray(n);
    }
    this.pendingBytes -= want;
    this.delivered += k;
    return out;
  }

  close(): void {
    this.stream.destroy();
  }
}
