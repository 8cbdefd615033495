/**
 * Streaming IDX reader (gzip-compressed or raw): checks the header (src/input/idx.ts), then hands
 * out fixed-size records from a (gunzip) stream, never holding more than about one batch plus one chunk.
 */
import { createReadStream, promises as fsp, type ReadStream } from "node:fs";
import { createGunzip, type Gunzip } from "node:zlib";
import { checkIdxDataLength, holdsIdxHeader, isGzip, parseIdxHeader, type IdxHeader } from "../input/idx.js";
import { InputError, errorMessage } from "../util/errors.js";

/** The header, and whether the file is gzip-compressed (its records are then decompressed on the way). */
export interface IdxStreamHeader extends IdxHeader {
  gzip: boolean;
}

const CHUNK = 1 << 20;

async function startsWithGzip(path: string): Promise<boolean> {
  const fh = await fsp.open(path, "r");
  try {
    const b = Buffer.alloc(2);
    const { bytesRead } = await fh.read(b, 0, 2, 0);
    return isGzip(b.subarray(0, bytesRead));
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
export async function readIdxHeader(path: string): Promise<IdxStreamHeader> {
  const gzip = await startsWithGzip(path);
  const s = openStream(path, gzip);
  let head = Buffer.alloc(0);
  try {
    for await (const c of s) {
      head = Buffer.concat([head, c as Buffer]);
      if (holdsIdxHeader(head)) break;
    }
  } catch (e) {
    throw new InputError(`${path}: corrupt gzip stream (${errorMessage(e)})`);
  } finally {
    s.destroy();
  }
  const h = { ...parseIdxHeader(head, path), gzip };
  checkIdxDataLength(path, h, (await decompressedSize(path, h)) - h.headerBytes, gzip);
  return h;
}

/**
 * The file's size, decompressed for gzip: its trailer's ISIZE, which is the size mod 2^32, so a
 * match mod 2^32 counts as the size the header declares.
 */
async function decompressedSize(path: string, h: IdxStreamHeader): Promise<number> {
  const { size } = await fsp.stat(path);
  if (!h.gzip) return size;
  const fh = await fsp.open(path, "r");
  let isize: number;
  try {
    const b = Buffer.alloc(4);
    await fh.read(b, 0, 4, Math.max(0, size - 4));
    isize = b.readUInt32LE(0);
  } finally {
    await fh.close();
  }
  const declared = h.headerBytes + h.count * h.recordBytes;
  return isize === declared % 2 ** 32 ? declared : isize;
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
    readonly header: IdxStreamHeader,
    private readonly stream: ByteStream,
    private readonly start: number,
  ) {
    this.it = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    // A raw file is opened at the record; a gzip stream must be decompressed up to it.
    this.toSkip = header.gzip ? header.headerBytes + start * header.recordBytes : 0;
  }

  static async open(path: string, start = 0, header?: IdxStreamHeader): Promise<IdxRecordReader> {
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
