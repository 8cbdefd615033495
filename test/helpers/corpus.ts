// A deterministic corpus of malformed requests for the four POST endpoints, both body kinds
// (application/json and multipart/form-data): corrupt, truncated and bomb images in every accepted
// format (PNG, JPEG, WebP, GIF), wrong types, non-finite numbers, bad base64, bad content types and
// encodings, oversize and chunked bodies, broken multipart. Used by test/malformed-corpus.test.ts and
// scripts/bench-attack.ts. Same seed -> byte-identical corpus.
import { deflateSync, gzipSync } from "node:zlib";
import { PNG_SIGNATURE, pngChunk } from "../../src/imaging/png-fast.js";
import sharp from "sharp";
import { Rng } from "../../src/util/rng.js";

export const ENDPOINTS = ["/classify", "/embed/invariant", "/embed/equivariant", "/generate"] as const;
export type Endpoint = (typeof ENDPOINTS)[number];
export type ImageFormat = "png" | "jpeg" | "webp" | "gif";
export const FORMATS: readonly ImageFormat[] = ["png", "jpeg", "webp", "gif"];
export const MIME: Record<ImageFormat, string> = {
  png: "image/png",
  jpeg: "image/jpeg",
  webp: "image/webp",
  gif: "image/gif",
};

/**
 * One request. `expect`: an exact status, or "4xx" (any 400-499); absent: the request may be valid
 * (e.g. a byte flip that still decodes), so only "no 5xx, no connection error" applies. `kind`: the
 * problem kind the answer's `type` must end with, when it is certain.
 */
export interface CorpusCase {
  name: string;
  category: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer;
  chunked?: boolean;
  expect?: number | "4xx";
  kind?: string;
}

export interface CorpusOptions {
  seed?: number;
  /** The server's --max-body-bytes (default 8 MiB): oversize bodies are this plus 64 KiB. */
  maxBodyBytes?: number;
  /** Truncated and byte-flipped variants per format (default 50 each). */
  perFormat?: number;
}

// ---------------------------------------------------------------- images

/** A light-on-dark 28x28 grey "digit": 2-4 thick smooth strokes in the central 20x20 box. */
export function mnistLike(rng: Rng, size = 28): Uint8Array {
  const img = new Float32Array(size * size);
  const strokes = rng.int(2, 4);
  const lo = Math.round(size * 0.22);
  const hi = Math.round(size * 0.78);
  for (let s = 0; s < strokes; s++) {
    const p = Array.from({ length: 3 }, () => [rng.int(lo, hi), rng.int(lo, hi)]);
    const t = 1.1 + rng.next();
    for (let k = 0; k <= 40; k++) {
      const u = k / 40;
      const a = (1 - u) * (1 - u);
      const b = 2 * u * (1 - u);
      const c = u * u;
      const cx = a * p[0][0] + b * p[1][0] + c * p[2][0];
      const cy = a * p[0][1] + b * p[1][1] + c * p[2][1];
      for (let y = Math.floor(cy - 3); y <= Math.ceil(cy + 3); y++)
        for (let x = Math.floor(cx - 3); x <= Math.ceil(cx + 3); x++) {
          if (x < 0 || y < 0 || x >= size || y >= size) continue;
          const d = Math.hypot(x - cx, y - cy);
          const v = Math.min(1, Math.max(0, t + 0.5 - d));
          img[y * size + x] = Math.max(img[y * size + x], v);
        }
    }
  }
  return Uint8Array.from(img, (v) => Math.round(v * 255));
}

/** Encodes a grey image (optionally as RGB/RGBA) in one of the accepted formats. */
export async function encodeImage(
  grey: Uint8Array,
  w: number,
  h: number,
  format: ImageFormat,
  variant = 0,
): Promise<Buffer> {
  let img = sharp(Buffer.from(grey), { raw: { width: w, height: h, channels: 1 } });
  if (variant === 1) img = img.toColourspace("srgb");
  if (variant === 2) img = img.ensureAlpha(0.9);
  switch (format) {
    case "png":
      return img.png({ palette: variant === 3 }).toBuffer();
    case "jpeg":
      return img.jpeg({ quality: 90, progressive: variant === 1 || variant === 3 }).toBuffer();
    case "webp":
      return img.webp({ lossless: variant >= 2 }).toBuffer();
    case "gif":
      return img.gif().toBuffer();
  }
}

/** A flat-colour image of w x h in the format (small file, w*h pixels when decoded). */
export async function flatImage(
  w: number,
  h: number,
  format: ImageFormat,
  opts: { channels?: 3 | 4; sixteenBit?: boolean } = {},
): Promise<Buffer> {
  const channels = opts.channels ?? 3;
  let img = sharp({
    create: { width: w, height: h, channels, background: { r: 40, g: 180, b: 90, alpha: 0.5 } },
  });
  if (opts.sixteenBit) img = img.toColourspace("rgb16");
  if (format === "png") return img.png({ compressionLevel: 9 }).toBuffer();
  if (format === "jpeg") return img.jpeg().toBuffer();
  if (format === "webp") return img.webp().toBuffer();
  return img.gif().toBuffer();
}

const PNG_SIG = PNG_SIGNATURE;

/** A PNG with a real IHDR (valid CRC) claiming w x h, and a tiny IDAT. */
export function pngHeaderBomb(w: number, h: number, colour = 0, depth = 8): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = depth;
  ihdr[9] = colour;
  const chunks = [PNG_SIG, pngChunk("IHDR", ihdr)];
  if (colour === 3) chunks.push(pngChunk("PLTE", Buffer.from([0, 0, 0, 255, 255, 255])));
  chunks.push(pngChunk("IDAT", deflateSync(Buffer.alloc(256))), pngChunk("IEND", Buffer.alloc(0)));
  return Buffer.concat(chunks);
}

function u16be(n: number): number[] {
  return [(n >> 8) & 0xff, n & 0xff];
}

/** A JPEG whose frame header (SOF0, or SOF2 when progressive) claims w x h; tiny scan data. */
export function jpegHeaderBomb(w: number, h: number, opts: { progressive?: boolean; tables?: boolean } = {}) {
  const out: number[] = [0xff, 0xd8];
  if (opts.tables) {
    out.push(0xff, 0xdb, ...u16be(67), 0x00, ...Array(64).fill(1));
    // A DC Huffman table with one 1-bit code.
    out.push(0xff, 0xc4, ...u16be(3 + 16 + 1), 0x00, 1, ...Array(15).fill(0), 0);
  }
  out.push(0xff, opts.progressive ? 0xc2 : 0xc0, ...u16be(11), 8, ...u16be(h), ...u16be(w), 1, 1, 0x11, 0);
  out.push(0xff, 0xda, ...u16be(8), 1, 1, 0x00, 0, 63, 0, 0x00, 0x00, 0x00, 0x00, 0xff, 0xd9);
  return Buffer.from(out);
}

function riff(chunks: Buffer[]): Buffer {
  const body = Buffer.concat([Buffer.from("WEBP"), ...chunks]);
  const head = Buffer.alloc(8);
  head.write("RIFF", 0, "latin1");
  head.writeUInt32LE(body.length, 4);
  return Buffer.concat([head, body]);
}

function webpChunk(fourcc: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.write(fourcc, 0, "latin1");
  head.writeUInt32LE(data.length, 4);
  return Buffer.concat([head, data, data.length % 2 ? Buffer.alloc(1) : Buffer.alloc(0)]);
}

/** WebP bombs: "vp8x" canvas w x h (24-bit fields) + a small VP8L; "vp8l" / "vp8" headers at 14 bits. */
export function webpHeaderBomb(w: number, h: number, kind: "vp8x" | "vp8l" | "vp8" = "vp8x"): Buffer {
  const vp8l = (lw: number, lh: number) => {
    const d = Buffer.alloc(5 + 16);
    d[0] = 0x2f;
    const bits = ((lw - 1) & 0x3fff) | (((lh - 1) & 0x3fff) << 14);
    d.writeUInt32LE(bits >>> 0, 1);
    return webpChunk("VP8L", d);
  };
  if (kind === "vp8x") {
    const x = Buffer.alloc(10);
    x.writeUIntLE(w - 1, 4, 3);
    x.writeUIntLE(h - 1, 7, 3);
    return riff([webpChunk("VP8X", x), vp8l(Math.min(w, 16384), Math.min(h, 16384))]);
  }
  if (kind === "vp8l") return riff([vp8l(Math.min(w, 16384), Math.min(h, 16384))]);
  // Lossy key frame: frame tag (3 bytes), start code, 14-bit width/height (+2-bit scale), some data.
  const d = Buffer.alloc(10 + 16);
  const size = 16; // first partition size, bits 5.. of the frame tag; key frame, version 0, show
  const tag = (size << 5) | 0x10;
  d.writeUIntLE(tag, 0, 3);
  d[3] = 0x9d;
  d[4] = 0x01;
  d[5] = 0x2a;
  d.writeUInt16LE(Math.min(w, 16383) & 0x3fff, 6);
  d.writeUInt16LE(Math.min(h, 16383) & 0x3fff, 8);
  return riff([webpChunk("VP8 ", d)]);
}

/** A GIF89a with screen sw x sh and one frame fw x fh of a few LZW bytes. */
export function gifHeaderBomb(sw: number, sh: number, fw = sw, fh = sh): Buffer {
  const le = (n: number) => [n & 0xff, (n >> 8) & 0xff];
  return Buffer.from([
    ...Buffer.from("GIF89a"),
    ...le(sw),
    ...le(sh),
    0x80, // global colour table, 2 entries
    0,
    0,
    0,
    0,
    0,
    255,
    255,
    255,
    0x2c,
    ...le(0),
    ...le(0),
    ...le(fw),
    ...le(fh),
    0,
    2, // LZW minimum code size
    2,
    0x4c,
    0x01,
    0,
    0x3b,
  ]);
}

/** The four 60000x60000 header bombs, one per accepted format (tiny files; never worth decoding). */
export function headerBombs(): Record<ImageFormat, Buffer> {
  return {
    png: pngHeaderBomb(60000, 60000),
    jpeg: jpegHeaderBomb(60000, 60000, { tables: true }),
    webp: webpHeaderBomb(60000, 60000, "vp8x"),
    gif: gifHeaderBomb(60000, 60000),
  };
}

/** A 28x28 24-bit BMP. */
export function bmp(grey: Uint8Array, w = 28, h = 28): Buffer {
  const row = Math.ceil((w * 3) / 4) * 4;
  const b = Buffer.alloc(54 + row * h);
  b.write("BM", 0, "latin1");
  b.writeUInt32LE(b.length, 2);
  b.writeUInt32LE(54, 10);
  b.writeUInt32LE(40, 14);
  b.writeInt32LE(w, 18);
  b.writeInt32LE(h, 22);
  b.writeUInt16LE(1, 26);
  b.writeUInt16LE(24, 28);
  b.writeUInt32LE(row * h, 34);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      b.fill(grey[(h - 1 - y) * w + x], 54 + y * row + x * 3, 54 + y * row + x * 3 + 3);
  return b;
}

// ---------------------------------------------------------------- request bodies

export interface Part {
  /** Field name; omitted: no name parameter at all. */
  name?: string;
  filename?: string;
  type?: string;
  data: Buffer | string;
  /** Raw header lines replacing the generated ones. */
  rawHeaders?: string[];
}

/** A multipart/form-data body. `close: false` leaves out the closing boundary; `eol` "\n" for LF-only. */
export function multipartBody(
  parts: Part[],
  boundary: string,
  opts: { close?: boolean; eol?: string } = {},
): Buffer {
  const eol = opts.eol ?? "\r\n";
  const out: Buffer[] = [];
  for (const p of parts) {
    let headers = p.rawHeaders;
    if (!headers) {
      let cd = "Content-Disposition: form-data";
      if (p.name !== undefined) cd += `; name="${p.name}"`;
      if (p.filename !== undefined) cd += `; filename="${p.filename}"`;
      headers = [cd];
      if (p.type) headers.push(`Content-Type: ${p.type}`);
    }
    out.push(Buffer.from(`--${boundary}${eol}${headers.join(eol)}${eol}${eol}`, "latin1"));
    out.push(typeof p.data === "string" ? Buffer.from(p.data) : p.data);
    out.push(Buffer.from(eol));
  }
  if (opts.close !== false) out.push(Buffer.from(`--${boundary}--${eol}`));
  return Buffer.concat(out);
}

export const BOUNDARY = "----equivaeCorpusBoundary7MA4YWxkTrZu0gW";
const MP_TYPE = `multipart/form-data; boundary=${BOUNDARY}`;

/** The fields /generate needs besides images (a class for style transfer); none elsewhere. */
function baseFields(path: Endpoint): Record<string, unknown> {
  return path === "/generate" ? { class: 3 } : {};
}

function imagePart(img: Buffer, fmt: string, k = 0): Part {
  const type = (MIME as Record<string, string>)[fmt] ?? "application/octet-stream";
  return { name: "image", filename: `img${k}.${fmt}`, type, data: img };
}

function textParts(fields: Record<string, unknown>): Part[] {
  return Object.entries(fields).map(([name, v]) => ({
    name,
    data: typeof v === "string" ? v : JSON.stringify(v),
  }));
}

// ---------------------------------------------------------------- the corpus

export async function buildCorpus(opts: CorpusOptions = {}): Promise<CorpusCase[]> {
  const rng = new Rng(opts.seed ?? 20260501);
  const maxBody = opts.maxBodyBytes ?? 8 * 1024 * 1024;
  const perFormat = opts.perFormat ?? 50;
  const cases: CorpusCase[] = [];
  let rot = 0; // rotates endpoint and body kind so every category covers all 8 combinations

  const prefix = () => (rng.next() < 0.25 ? "/v1" : "");
  const maybeChunked = () => rng.next() < 0.15;
  const add = (c: CorpusCase) => cases.push(c);

  const jsonCase = (
    category: string,
    name: string,
    path: Endpoint,
    body: unknown,
    extra: Partial<CorpusCase> = {},
  ): CorpusCase => ({
    name: `${category}/${name} json ${path}`,
    category,
    method: "POST",
    path: prefix() + path,
    headers: { "content-type": "application/json" },
    body: Buffer.isBuffer(body)
      ? body
      : Buffer.from(
          typeof body === "string" ? body : JSON.stringify({ ...baseFields(path), ...(body as object) }),
        ),
    chunked: maybeChunked(),
    ...extra,
  });

  const mpCase = (
    category: string,
    name: string,
    path: Endpoint,
    parts: Part[],
    extra: Partial<CorpusCase> = {},
    mpOpts: { close?: boolean; eol?: string; boundary?: string; withBase?: boolean } = {},
  ): CorpusCase => ({
    name: `${category}/${name} multipart ${path}`,
    category,
    method: "POST",
    path: prefix() + path,
    headers: { "content-type": `multipart/form-data; boundary=${mpOpts.boundary ?? BOUNDARY}` },
    body: multipartBody(
      [
        ...parts,
        ...(mpOpts.withBase === false
          ? []
          : textParts(baseFields(path)).filter((b) => !parts.some((p) => p.name === b.name))),
      ],
      mpOpts.boundary ?? BOUNDARY,
      mpOpts,
    ),
    chunked: maybeChunked(),
    ...extra,
  });

  /** One image delivered to the next endpoint / body kind in rotation. */
  const deliver = (
    category: string,
    name: string,
    img: Buffer,
    fmt: string,
    extra: Partial<CorpusCase> = {},
  ) => {
    const i = rot++;
    const path = ENDPOINTS[i % 4];
    if (Math.floor(i / 4) % 2 === 0)
      add(jsonCase(category, name, path, { images: [img.toString("base64")] }, extra));
    else add(mpCase(category, name, path, [imagePart(img, fmt)], extra));
  };

  // A valid 28x28 PNG and pixel array, the "otherwise valid" part of requests with one bad field.
  const digit = mnistLike(rng);
  const goodPng = await encodeImage(digit, 28, 28, "png");
  const zeros = Array(784).fill(0);

  // --- images: valid bases per format, then truncated and byte-flipped copies
  const bases: Record<ImageFormat, Buffer[]> = { png: [], jpeg: [], webp: [], gif: [] };
  for (const fmt of FORMATS)
    for (let v = 0; v < 4; v++) bases[fmt].push(await encodeImage(mnistLike(rng), 28, 28, fmt, v));

  for (const fmt of FORMATS) {
    for (let k = 0; k < perFormat; k++) {
      const base = bases[fmt][rng.int(0, 3)];
      const cut = rng.int(1, base.length - 1);
      const certain = cut < 0.6 * base.length;
      deliver("image-truncated", `${fmt} ${cut}/${base.length}`, base.subarray(0, cut), fmt, {
        expect: certain ? (cut >= 40 ? 400 : "4xx") : undefined,
        kind: certain && cut >= 40 ? "invalid-image" : undefined,
      });
    }
    for (let k = 0; k < perFormat; k++) {
      const base = Buffer.from(bases[fmt][rng.int(0, 3)]);
      const flips = rng.int(1, 8);
      const lo = Math.floor(base.length * 0.2);
      const hi = Math.floor(base.length * 0.8);
      for (let f = 0; f < flips; f++) base[rng.int(lo, hi)] ^= 1 << rng.int(0, 7);
      deliver("image-corrupt", `${fmt} ${flips} flips`, base, fmt);
    }
  }

  // --- bombs: header-only (60000x60000 and friends) and real flat images over 4,000,000 pixels
  const bombs: Array<[string, ImageFormat, Buffer, boolean]> = [
    ["png grey8 60000x60000", "png", pngHeaderBomb(60000, 60000), true],
    ["png rgba16 60000x60000", "png", pngHeaderBomb(60000, 60000, 6, 16), true],
    ["png palette 60000x60000", "png", pngHeaderBomb(60000, 60000, 3, 8), true],
    ["png 1x4000001", "png", pngHeaderBomb(1, 4_000_001), false],
    ["jpeg sof0 60000x60000", "jpeg", jpegHeaderBomb(60000, 60000, { tables: true }), true],
    ["jpeg sof0 bare 60000x60000", "jpeg", jpegHeaderBomb(60000, 60000), true],
    [
      "jpeg sof2 60000x60000",
      "jpeg",
      jpegHeaderBomb(60000, 60000, { progressive: true, tables: true }),
      true,
    ],
    ["webp vp8x 60000x60000", "webp", webpHeaderBomb(60000, 60000, "vp8x"), true],
    ["webp vp8l 16384x16384", "webp", webpHeaderBomb(16384, 16384, "vp8l"), true],
    ["webp vp8 16383x16383", "webp", webpHeaderBomb(16383, 16383, "vp8"), true],
    ["gif 60000x60000", "gif", gifHeaderBomb(60000, 60000), true],
    ["gif screen 60000x60000 frame 28x28", "gif", gifHeaderBomb(60000, 60000, 28, 28), true],
    ["gif screen 28x28 frame 60000x60000", "gif", gifHeaderBomb(28, 28, 60000, 60000), false],
  ];
  for (const [name, fmt, img, certain] of bombs)
    for (let d = 0; d < 4; d++)
      deliver(
        "image-bomb",
        name,
        img,
        fmt,
        certain ? { expect: 413, kind: "image-too-large" } : { expect: "4xx" },
      );
  for (const fmt of FORMATS) {
    const big = await flatImage(2100, 2100, fmt);
    for (let d = 0; d < 2; d++)
      deliver("image-bomb", `${fmt} real 2100x2100`, big, fmt, { expect: 413, kind: "image-too-large" });
  }

  // --- the per-request pixel budget: five 1900x1900 images (3.61M each, 18M together) -> 413
  for (const fmt of FORMATS) {
    const img = await flatImage(1900, 1900, fmt);
    const path = ENDPOINTS[rot++ % 2];
    const name = `5 x ${fmt} 1900x1900`;
    const extra = { expect: 413 };
    if (fmt === "png" || fmt === "webp")
      add(jsonCase("request-pixels", name, path, { images: Array(5).fill(img.toString("base64")) }, extra));
    else
      add(
        mpCase(
          "request-pixels",
          name,
          path,
          Array.from({ length: 5 }, (_, k) => imagePart(img, fmt, k)),
          extra,
        ),
      );
  }

  // --- wrong image types and odd images
  const tiff = await sharp(Buffer.from(digit), { raw: { width: 28, height: 28, channels: 1 } })
    .tiff()
    .toBuffer();
  let avif: Buffer | undefined;
  try {
    avif = await sharp(Buffer.from(digit), { raw: { width: 28, height: 28, channels: 1 } })
      .avif()
      .toBuffer();
  } catch {
    avif = undefined;
  }
  const svg = Buffer.from(
    '<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28"><circle cx="14" cy="14" r="8" fill="#fff"/></svg>',
  );
  const magics = [
    PNG_SIG.subarray(0, 2),
    Buffer.from([0xff, 0xd8]),
    Buffer.from("RIFF"),
    Buffer.from("GIF8"),
  ];
  for (let k = 0; k < 24; k++) {
    let r: Buffer;
    do r = Buffer.from(Array.from({ length: rng.int(16, 4096) }, () => rng.int(0, 255)));
    while (magics.some((m) => r.subarray(0, m.length).equals(m)));
    deliver("image-type", `random ${r.length} bytes`, r, "bin", {
      expect: 415,
      kind: "unsupported-image-type",
    });
  }
  const wrongTypes: Array<[string, Buffer | undefined]> = [
    ["bmp", bmp(digit)],
    ["tiff", tiff],
    ["svg", svg],
    ["avif", avif],
    ["pdf", Buffer.from("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")],
    ["ico", Buffer.concat([Buffer.from([0, 0, 1, 0, 1, 0, 28, 28, 0, 0, 1, 0, 32, 0]), Buffer.alloc(64)])],
    ["text", Buffer.from("hello, this is not an image\n")],
  ];
  for (const [name, img] of wrongTypes) {
    if (!img) continue;
    for (let d = 0; d < 4; d++)
      deliver("image-type", name, img, name, { expect: 415, kind: "unsupported-image-type" });
  }
  const garbageAfter = (m: Buffer) =>
    Buffer.concat([m, Buffer.from(Array.from({ length: 200 }, () => rng.int(0, 255)))]);
  const invalids: Array<[string, Buffer, string]> = [
    ["png magic + garbage", garbageAfter(PNG_SIG), "png"],
    ["jpeg magic + garbage", garbageAfter(Buffer.from([0xff, 0xd8, 0xff, 0xe0])), "jpeg"],
    [
      "webp magic + garbage",
      Buffer.concat([Buffer.from("RIFF\x10\x00\x00\x00WEBPVP8 ", "latin1"), garbageAfter(Buffer.alloc(0))]),
      "webp",
    ],
    ["gif magic + garbage", garbageAfter(Buffer.from("GIF89a")), "gif"],
    ["png magic + jpeg body", Buffer.concat([PNG_SIG, bases.jpeg[0]]), "png"],
    ["png zero width", pngHeaderBomb(0, 28), "png"],
  ];
  // Garbage after the magic may read as a header claiming a huge size (413): any 4xx.
  for (const [name, img, fmt] of invalids)
    for (let d = 0; d < 4; d++) deliver("image-type", name, img, fmt, { expect: "4xx" });
  for (let d = 0; d < 4; d++) deliver("image-type", "empty file", Buffer.alloc(0), "png", { expect: "4xx" });
  for (const fmt of FORMATS) {
    const small = await encodeImage(
      Uint8Array.from({ length: 16 }, () => 200),
      4,
      4,
      fmt,
    );
    deliver("image-type", `${fmt} 4x4`, small, fmt, { expect: 422, kind: "image-too-small" });
  }
  const thin = await sharp({ create: { width: 1, height: 5000, channels: 3, background: "#888" } })
    .png()
    .toBuffer();
  for (let d = 0; d < 2; d++)
    deliver("image-type", "png 1x5000", thin, "png", { expect: 422, kind: "image-too-small" });

  // --- wrong types in JSON (one bad field; otherwise a valid request)
  const deep = (depth: number, leaf: string) => "[".repeat(depth) + leaf + "]".repeat(depth);
  const common: Array<[string, Record<string, unknown> | string]> = [
    ["images number", { images: 5 }],
    ["images string", { images: "abc" }],
    ["images [1]", { images: [1] }],
    ["images nested", { images: [["a"]] }],
    ["images object", { images: {} }],
    ["images null", { images: null }],
    ["images [null]", { images: [null] }],
    ["images []", { images: [] }],
    ["pixels string", { pixels: "x" }],
    ["pixels number", { pixels: 5 }],
    ["pixels [[string]]", { pixels: [["a"]] }],
    ["pixels [[null]]", { pixels: [[null]] }],
    ["pixels [{}]", { pixels: [{}] }],
    ["pixels [[]]", { pixels: [[]] }],
    ["pixels too deep", { pixels: [[[[[0.5]]]]] }],
    ["pixels mixed", { pixels: [[0.5, "0.5", ...zeros.slice(2)]] }],
    ["pixels short", { pixels: [zeros.slice(0, 100)] }],
    ["pixels out of range", { pixels: [zeros.map((_, i) => (i === 5 ? 7 : 0))] }],
    ["pixels 1e308", { pixels: [zeros.map((_, i) => (i === 9 ? 1e308 : 0))] }],
    ["pixels nesting 5000", `{"pixels": ${deep(5000, "0.5")}}`],
    ["object nesting 5000", `{"pixels": [[0]], "x": ${'{"a":'.repeat(5000)}1${"}".repeat(5000)}}`],
    ["pixels_range", { pixels: [zeros], pixels_range: "0-1000" }],
    ["pixels_range number", { pixels: [zeros], pixels_range: 255 }],
    ["invert string", { pixels: [zeros], invert: "yes" }],
    ["invert number", { pixels: [zeros], invert: 1 }],
    ["background", { pixels: [zeros], background: "red" }],
    ["background number", { pixels: [zeros], background: 0 }],
    ["unknown field", { pixels: [zeros], foo: 1 }],
    ["__proto__", `{"pixels": [[${zeros.join(",")}]], "__proto__": {"polluted": 1}}`],
    ["constructor", { pixels: [zeros], constructor: { prototype: {} } }],
    ["65 pixel images", { pixels: Array(65).fill(zeros) }],
  ];
  const perEndpoint: Record<Endpoint, Array<[string, Record<string, unknown>]>> = {
    "/classify": [
      ["top_k string", { top_k: "3" }],
      ["top_k 0", { top_k: 0 }],
      ["top_k -1", { top_k: -1 }],
      ["top_k 1.5", { top_k: 1.5 }],
      ["top_k null", { top_k: null }],
      ["top_k array", { top_k: [3] }],
      ["method bogus", { method: "bogus" }],
      ["method number", { method: 1 }],
    ],
    "/embed/invariant": [
      ["set string", { set: "true" }],
      ["set number", { set: 1 }],
      ["set null", { set: null }],
      ["set object", { set: {} }],
    ],
    "/embed/equivariant": [
      ["class array", { class: [1] }],
      ["class object", { class: {} }],
      ["class bool", { class: true }],
      ["class 3.5", { class: 3.5 }],
      ["class -1", { class: -1 }],
      ["class cat", { class: "cat" }],
      ["class 99", { class: 99 }],
      ["v string", { v: "x" }],
      ["v mixed", { v: [1, "a"] }],
      ["v empty", { v: [] }],
      ["v nested", { v: [[1]] }],
      ["v length 3", { v: [1, 2, 3] }],
      ["class and v", { class: 1, v: Array(16).fill(0) }],
    ],
    "/generate": [
      ["z string", { z: "x" }],
      ["z deep", { z: [[["a"]]] }],
      ["z [[]]", { z: [[]] }],
      ["z length 2", { z: [1, 2] }],
      ["z 100 rows", { z: Array(100).fill(Array(16).fill(0)) }],
      ["seed -1", { seed: -1 }],
      ["seed 2^32", { seed: 4294967296 }],
      ["seed string", { seed: "1" }],
      ["seed 1.5", { seed: 1.5 }],
      ["count 0", { count: 0 }],
      ["count -1", { count: -1 }],
      ["count string", { count: "2" }],
      ["count 100000", { count: 100000 }],
      ["interpolate empty", { interpolate: {} }],
      ["interpolate no to", { interpolate: { from: Array(16).fill(0) } }],
      ["interpolate steps 1", { interpolate: { from: Array(16).fill(0), to: Array(16).fill(1), steps: 1 } }],
      [
        "interpolate steps 100000",
        { interpolate: { from: Array(16).fill(0), to: Array(16).fill(1), steps: 100000 } },
      ],
      ["interpolate from 3", { interpolate: { from: [1, 2, 3], to: Array(16).fill(1) } }],
      ["format bmp", { format: "bmp" }],
      ["format number", { format: 5 }],
      ["class cat", { class: "cat" }],
      ["class and v", { class: 1, v: Array(16).fill(0) }],
      ["v wrong length", { class: undefined, v: [1, 2] }],
    ],
  };
  for (const path of ENDPOINTS) {
    for (const [name, body] of common) {
      let b: unknown = body;
      if (typeof body === "string" && path === "/generate") b = body.replace(/^\{/, '{"class": 3, ');
      add(jsonCase("wrong-type", name, path, b, { expect: "4xx" }));
    }
    for (const [name, field] of perEndpoint[path])
      add(
        jsonCase("wrong-type", name, path, path === "/generate" ? field : { pixels: [zeros], ...field }, {
          expect: "4xx",
        }),
      );
  }
  const bodies: Array<[string, string]> = [
    ["array body", "[]"],
    ["null body", "null"],
    ["string body", '"str"'],
    ["number body", "123"],
    ["true body", "true"],
    ["empty object", "{}"],
  ];
  for (const path of ENDPOINTS)
    for (const [name, text] of bodies) add(jsonCase("wrong-type", name, path, text, { expect: "4xx" }));

  // --- wrong types in multipart text fields (with a valid PNG attached)
  const mpFields: Array<[string, Record<string, string>, Endpoint[] | "all"]> = [
    ["top_k abc", { top_k: "abc" }, ["/classify"]],
    ["top_k 0", { top_k: "0" }, ["/classify"]],
    ["method bogus", { method: "bogus" }, ["/classify"]],
    ["set maybe", { set: "maybe" }, ["/embed/invariant"]],
    ["class cat", { class: "cat" }, ["/embed/equivariant", "/generate"]],
    ["class [1]", { class: "[1]" }, ["/embed/equivariant"]],
    ["v mixed", { v: '[1,"a"]' }, ["/embed/equivariant"]],
    ["v not json", { v: "[1,2" }, ["/embed/equivariant"]],
    ["z deep", { z: "[[[1]]]" }, ["/generate"]],
    ["seed -1", { seed: "-1" }, ["/generate"]],
    ["count abc", { count: "abc" }, ["/generate"]],
    ["format bmp", { format: "bmp" }, ["/generate"]],
    ["invert yes", { invert: "yes" }, "all"],
    ["background red", { background: "red" }, "all"],
    ["unknown field", { foo: "1" }, "all"],
    ["pixels text", { pixels: "abc" }, "all"],
    ["image as text field", { image: "hello" }, "all"],
  ];
  for (const [name, fields, where] of mpFields)
    for (const path of where === "all" ? ENDPOINTS : where)
      add(
        mpCase("wrong-type", name, path, [imagePart(goodPng, "png"), ...textParts(fields)], {
          expect: "4xx",
        }),
      );

  // --- JSON syntax
  const syntax: Array<[string, string, (number | "4xx")?]> = [
    ["empty body", ""],
    ["open brace", "{"],
    ["truncated array", '{"pixels": [[0,0'],
    ["missing value", '{"pixels":}'],
    ["single quotes", "{'pixels': 1}"],
    ["trailing comma", '{"pixels": [[0]],}'],
    ["bare word", "nul"],
    ["NaN literal", '{"pixels": [[NaN]]}'],
    ["Infinity literal", '{"pixels": [[Infinity]]}'],
    ["-Infinity literal", '{"pixels": [[-Infinity]]}'],
    ["NUL byte", "\u0000"],
    ["trailing garbage", '{"pixels": [[0]]}}'],
    ["two documents", "{} {}"],
    ["unterminated string", '{"images": ["iVBORw0KGgo'],
    ["comment", '// x\n{"pixels": [[0]]}'],
    ["duplicate keys", '{"top_k": 1, "top_k": "x", "pixels": [[0]]}'],
    ["lone minus", '{"pixels": [[-]]}'],
    ["hex number", '{"pixels": [[0x10]]}'],
    ["leading zero", '{"pixels": [[01]]}'],
    ["deep open brackets", "[".repeat(100000)],
  ];
  for (const path of ENDPOINTS)
    for (const [name, text, expect] of syntax)
      add(jsonCase("json-syntax", name, path, text, { expect: expect ?? "4xx" }));
  for (const path of ENDPOINTS) {
    const bin = Buffer.from(Array.from({ length: 300 }, () => rng.int(0, 255)));
    add(jsonCase("json-syntax", "random bytes", path, bin, { expect: "4xx" }));
    const utf16 = Buffer.from(JSON.stringify({ ...baseFields(path), pixels: [zeros] }), "utf16le");
    add(jsonCase("json-syntax", "utf-16 body as utf-8", path, utf16, { expect: "4xx" }));
    const bom = Buffer.concat([
      Buffer.from([0xef, 0xbb, 0xbf]),
      Buffer.from(JSON.stringify({ ...baseFields(path), pixels: [zeros] })),
    ]);
    add(jsonCase("json-syntax", "utf-8 BOM", path, bom)); // may be accepted
    const badUtf8 = Buffer.concat([
      Buffer.from('{"pixels": [[0]], "x": "'),
      Buffer.from([0xc3, 0x28, 0xff]),
      Buffer.from('"}'),
    ]);
    add(jsonCase("json-syntax", "invalid utf-8 in string", path, badUtf8, { expect: "4xx" }));
  }

  // --- non-finite numbers (raw JSON text): 422 non-finite-number wherever they are
  const inf = ["1e309", "-1e309", "1E+400", "-9e999", "1.8e308", "1" + "0".repeat(400)];
  const flat = (tok: string, at: number) =>
    `[[${zeros.map((z, i) => (i === at ? tok : String(z))).join(",")}]]`;
  const nested = (tok: string) =>
    "[[" +
    Array.from(
      { length: 28 },
      (_, y) => `[${Array.from({ length: 28 }, (_, x) => (x === 3 && y === 7 ? tok : "0")).join(",")}]`,
    ).join(",") +
    "]]";
  const vec = (tok: string, n = 16) =>
    `[${Array.from({ length: n }, (_, i) => (i === 2 ? tok : "0")).join(",")}]`;
  const nf = (body: string, path: Endpoint) =>
    path === "/generate" ? body.replace(/^\{/, '{"class": 3, ') : body;
  inf.forEach((tok, k) => {
    for (const path of ENDPOINTS) {
      const pixels = k % 2 === 0 ? flat(tok, rng.int(0, 783)) : nested(tok);
      add(
        jsonCase(
          "non-finite",
          `pixels ${k % 2 === 0 ? "flat" : "[h][w]"} ${tok.length > 12 ? `${tok.length}-digit integer` : tok}`,
          path,
          nf(`{"pixels": ${pixels}}`, path),
          {
            expect: 422,
            kind: "non-finite-number",
          },
        ),
      );
    }
  });
  const nfSpecific: Array<[string, Endpoint, string]> = [
    ["top_k 1e309", "/classify", `{"pixels": [[${zeros.join(",")}]], "top_k": 1e309}`],
    ["unknown field 1e309", "/classify", `{"pixels": [[${zeros.join(",")}]], "foo": 1e309}`],
    ["set with 1e309 elsewhere", "/embed/invariant", `{"pixels": [[${zeros.join(",")}]], "x": [1e309]}`],
    ["v 1e309", "/embed/equivariant", `{"pixels": [[${zeros.join(",")}]], "v": ${vec("1e309")}}`],
    ["v -1e309", "/embed/equivariant", `{"pixels": [[${zeros.join(",")}]], "v": ${vec("-1e309")}}`],
    ["class 1e309", "/embed/equivariant", `{"pixels": [[${zeros.join(",")}]], "class": 1e309}`],
    ["v 1e309", "/generate", `{"v": ${vec("1e309")}}`],
    ["z 1e309", "/generate", `{"class": 3, "z": ${vec("1e309")}}`],
    ["z rows -1e309", "/generate", `{"class": 3, "z": [${vec("0")}, ${vec("-1e309")}]}`],
    ["seed 1e309", "/generate", `{"class": 3, "seed": 1e309}`],
    ["count -1e309", "/generate", `{"class": 3, "count": -1e309}`],
    [
      "interpolate.from 1e309",
      "/generate",
      `{"class": 3, "interpolate": {"from": ${vec("1e309")}, "to": ${vec("0")}}}`,
    ],
    ["class 1e309", "/generate", `{"class": 1e309}`],
  ];
  for (const [name, path, text] of nfSpecific)
    add(jsonCase("non-finite", name, path, text, { expect: 422, kind: "non-finite-number" }));
  const nfMultipart: Array<[string, Endpoint, Record<string, string>]> = [
    ["top_k 1e309", "/classify", { top_k: "1e309" }],
    ["pixels 1e309", "/classify", { pixels: flat("1e309", 3) }],
    ["set 1e309", "/embed/invariant", { set: "1e309" }],
    ["v 1e309", "/embed/equivariant", { v: vec("1e309") }],
    ["class -1e309", "/embed/equivariant", { class: "-1e309" }],
    ["seed 1e309", "/generate", { seed: "1e309" }],
    ["count 1e309", "/generate", { count: "1e309" }],
    ["v 1e309", "/generate", { v: vec("1e309") }],
  ];
  for (const [name, path, fields] of nfMultipart)
    add(
      mpCase(
        "non-finite",
        name,
        path,
        [imagePart(goodPng, "png"), ...textParts(fields)],
        { expect: "4xx" },
        { withBase: path !== "/generate" || !("v" in fields) },
      ),
    );

  // --- bad base64
  const b64 = goodPng.toString("base64");
  const b64Cases: Array<[string, string, (number | "4xx")?, string?]> = [
    ["punctuation", "!!!!", 400, "invalid-base64"],
    ["data uri @", "data:image/png;base64,@@@@", 400, "invalid-base64"],
    ["data uri empty", "data:image/png;base64,", "4xx"],
    ["empty string", "", "4xx"],
    ["hello", "aGVsbG8=", 415, "unsupported-image-type"],
    ["data text/plain", "data:text/plain;base64,aGVsbG8=", "4xx"],
    ["data uri not base64", "data:image/png,rawtext", "4xx"],
    ["percent inside", b64.slice(0, 100) + "%" + b64.slice(100), 400, "invalid-base64"],
    ["unicode", "ü€𝄞", 400, "invalid-base64"],
    ["only padding", "=====", "4xx"],
    ["digits", "1234", "4xx"],
    ["truncated mid-quad", b64.slice(0, Math.floor(b64.length * 0.5) + 1), "4xx"],
    ["mime line breaks", b64.replace(/(.{76})/g, "$1\r\n")],
    ["base64url", goodPng.toString("base64url")],
    ["no padding", b64.replace(/=+$/, "")],
    ["100k zeros", "A".repeat(100000), 415, "unsupported-image-type"],
  ];
  for (const path of ENDPOINTS)
    for (const [name, s, expect, kind] of b64Cases)
      add(jsonCase("bad-base64", name, path, { images: [s] }, { expect, kind }));

  // --- content types
  for (const path of ENDPOINTS) {
    const body = Buffer.from(JSON.stringify({ ...baseFields(path), pixels: [zeros] }));
    const mp = multipartBody([imagePart(goodPng, "png"), ...textParts(baseFields(path))], BOUNDARY);
    const ct: Array<[string, Record<string, string>, Buffer, (number | "4xx")?, string?]> = [
      ["none", {}, body, 415, "unsupported-media-type"],
      ["text/plain", { "content-type": "text/plain" }, body, 415, "unsupported-media-type"],
      ["application/xml", { "content-type": "application/xml" }, body, 415, "unsupported-media-type"],
      ["urlencoded", { "content-type": "application/x-www-form-urlencoded" }, Buffer.from("top_k=3"), 415],
      ["image/png", { "content-type": "image/png" }, goodPng, 415, "unsupported-media-type"],
      ["octet-stream", { "content-type": "application/octet-stream" }, goodPng, 415],
      // JSON is UTF-8 (RFC 8259); an ASCII body under another charset may be accepted or refused.
      ["json latin1", { "content-type": "application/json; charset=latin1" }, body],
      ["json utf-7", { "content-type": "application/json; charset=utf-7" }, body],
      ["application/jsonx", { "content-type": "application/jsonx" }, body, 415],
      ["bare json", { "content-type": "json" }, body, "4xx"],
      ["multipart no boundary", { "content-type": "multipart/form-data" }, mp, 400],
      ["multipart empty boundary", { "content-type": "multipart/form-data; boundary=" }, mp, 400],
      ["multipart with json body", { "content-type": MP_TYPE }, body, 400],
      ["json with multipart body", { "content-type": "application/json" }, mp, 400],
      ["multipart/mixed", { "content-type": `multipart/mixed; boundary=${BOUNDARY}` }, mp, 415],
      ["upper-case json", { "content-type": "APPLICATION/JSON" }, body],
      ["10 KB content type", { "content-type": "application/json; x=" + "a".repeat(10000) }, body],
    ];
    for (const [name, headers, b, expect, kind] of ct)
      add({
        name: `content-type/${name} ${path}`,
        category: "content-type",
        method: "POST",
        path: prefix() + path,
        headers,
        body: b,
        chunked: maybeChunked(),
        expect,
        kind,
      });
  }

  // --- content encodings
  for (const path of ENDPOINTS) {
    const text = JSON.stringify({ ...baseFields(path), pixels: [zeros] });
    const gz = gzipSync(text);
    const mp = multipartBody([imagePart(goodPng, "png"), ...textParts(baseFields(path))], BOUNDARY);
    const enc: Array<[string, string, string, Buffer, (number | "4xx")?]> = [
      ["gzip not gzip", "gzip", "application/json", Buffer.from(text), 400],
      ["deflate garbage", "deflate", "application/json", Buffer.from("garbage garbage garbage"), 400],
      ["gzip truncated", "gzip", "application/json", gz.subarray(0, Math.floor(gz.length / 2)), 400],
      ["br garbage", "br", "application/json", Buffer.from("garbage garbage garbage"), "4xx"],
      ["compress", "compress", "application/json", Buffer.from(text), 415],
      ["x-bogus", "x-bogus", "application/json", Buffer.from(text), 415],
      ["gzip, identity", "gzip, identity", "application/json", gz],
      ["identity", "identity", "application/json", Buffer.from(text)],
      ["valid gzip", "gzip", "application/json", gz],
      ["multipart gzip not gzip", "gzip", MP_TYPE, mp, 400],
      ["multipart compress", "compress", MP_TYPE, mp, 415],
    ];
    for (const [name, ce, ctype, b, expect] of enc)
      add({
        name: `encoding/${name} ${path}`,
        category: "encoding",
        method: "POST",
        path: prefix() + path,
        headers: { "content-type": ctype, "content-encoding": ce },
        body: b,
        chunked: maybeChunked(),
        expect,
      });
  }

  // --- oversize bodies (Content-Length and chunked) and a gzip bomb
  const over = maxBody + 64 * 1024;
  const bigJson = (path: Endpoint) => {
    const head = Buffer.from(`{${path === "/generate" ? '"class": 3, ' : ""}"pixels": [[`);
    const tail = Buffer.from("0]]}");
    return Buffer.concat([head, Buffer.alloc(over - head.length - tail.length, "0,"), tail]);
  };
  const bigFile = Buffer.concat([goodPng.subarray(0, 33), Buffer.alloc(over)]);
  const gzBomb = gzipSync(
    Buffer.concat([Buffer.from('{"images": ["'), Buffer.alloc(64 * 1024 * 1024, "A"), Buffer.from('"]}')]),
  );
  for (const path of ENDPOINTS) {
    const j = bigJson(path);
    add({
      ...jsonCase("oversize", "json content-length", path, j),
      chunked: false,
      expect: 413,
      kind: "payload-too-large",
    });
    add({
      ...jsonCase("oversize", "json chunked", path, j),
      chunked: true,
      expect: 413,
      kind: "payload-too-large",
    });
    add({
      ...mpCase("oversize", "multipart chunked", path, [imagePart(bigFile, "png")]),
      chunked: true,
      expect: 413,
    });
    add({
      ...jsonCase("oversize", `gzip bomb ${gzBomb.length} B -> 64 MiB`, path, gzBomb),
      headers: { "content-type": "application/json", "content-encoding": "gzip" },
      expect: 413,
    });
  }
  add({
    ...mpCase("oversize", "multipart content-length", "/classify", [imagePart(bigFile, "png")]),
    chunked: false,
    expect: 413,
  });
  add({
    ...mpCase("oversize", "multipart content-length", "/embed/invariant", [imagePart(bigFile, "png")]),
    chunked: false,
    expect: 413,
  });
  const third = Buffer.concat([goodPng.subarray(0, 33), Buffer.alloc(Math.ceil(over / 3))]);
  for (const path of ["/classify", "/generate"] as const) {
    const parts = [0, 1, 2].map((k) => imagePart(third, "png", k));
    add({
      ...mpCase("oversize", "three files over the body limit together", path, parts),
      chunked: path === "/generate",
      expect: 413,
    });
  }

  // --- multipart structure
  interface Struct {
    parts: Part[];
    opts?: Parameters<typeof multipartBody>[2];
    boundary?: string;
    headerBoundary?: string;
    /** Append a closing delimiter without the final "--". */
    tail?: boolean;
    preamble?: boolean;
    /** Leave out /generate's class (with it, a request without images is valid there). */
    noBase?: boolean;
  }
  const mpStruct: Array<[string, () => Struct, (number | "4xx")?]> = [
    ["part without name", () => ({ parts: [{ filename: "x.png", type: "image/png", data: goodPng }] }), 400],
    [
      "part without content-disposition",
      () => ({ parts: [{ rawHeaders: ["Content-Type: image/png"], data: goodPng }], noBase: true }),
      400,
    ],
    [
      "65 fields",
      () => ({
        parts: [
          imagePart(goodPng, "png"),
          ...Array.from({ length: 65 }, (_, k) => ({ name: `f${k}`, data: "1" })),
        ],
      }),
      400,
    ],
    [
      "100 fields",
      () => ({
        parts: [
          imagePart(goodPng, "png"),
          ...Array.from({ length: 100 }, (_, k) => ({ name: `f${k}`, data: "1" })),
        ],
      }),
      400,
    ],
    ["no closing boundary", () => ({ parts: [imagePart(goodPng, "png")], opts: { close: false } }), 400],
    [
      "closing boundary without --",
      () => ({ parts: [imagePart(goodPng, "png")], opts: { close: false }, tail: true }),
      400,
    ],
    [
      "boundary mismatch",
      () => ({
        parts: [imagePart(goodPng, "png")],
        boundary: "bodyBoundary",
        headerBoundary: "headerBoundary",
      }),
      400,
    ],
    ["LF line endings", () => ({ parts: [imagePart(goodPng, "png")], opts: { eol: "\n" } }), "4xx"],
    [
      "100 KB header line",
      () => ({
        parts: [
          {
            rawHeaders: [
              `Content-Disposition: form-data; name="image"; filename="${"x".repeat(100000)}.png"`,
            ],
            data: goodPng,
          },
        ],
      }),
      "4xx",
    ],
    ["65 files", () => ({ parts: Array.from({ length: 65 }, (_, k) => imagePart(goodPng, "png", k)) }), 413],
    ["file as 'images'", () => ({ parts: [{ ...imagePart(goodPng, "png"), name: "images" }] }), 400],
    ["file as 'pixels'", () => ({ parts: [{ ...imagePart(goodPng, "png"), name: "pixels" }] }), 400],
    ["only closing boundary", () => ({ parts: [], noBase: true }), 400],
    [
      "10 KB field name",
      () => ({ parts: [imagePart(goodPng, "png"), { name: "f".repeat(10000), data: "1" }] }),
      "4xx",
    ],
    [
      "NUL in part header",
      () => ({
        parts: [
          {
            rawHeaders: ['Content-Disposition: form-data; name="im\u0000age"; filename="x.png"'],
            data: goodPng,
          },
        ],
      }),
      "4xx",
    ],
    ["garbage preamble", () => ({ parts: [imagePart(goodPng, "png")], preamble: true })],
    ["70-char boundary", () => ({ parts: [imagePart(goodPng, "png")], boundary: "b".repeat(70) })],
    [
      "base64 transfer encoding",
      () => ({
        parts: [
          {
            rawHeaders: [
              'Content-Disposition: form-data; name="image"; filename="x.png"',
              "Content-Transfer-Encoding: base64",
            ],
            data: b64,
          },
        ],
      }),
    ],
  ];
  for (const path of ENDPOINTS)
    for (const [name, make, expect] of mpStruct) {
      const m = make();
      const boundary = m.boundary ?? BOUNDARY;
      const base = m.noBase ? [] : textParts(baseFields(path));
      let body = multipartBody([...m.parts, ...base], boundary, m.opts);
      if (m.tail) body = Buffer.concat([body, Buffer.from(`--${boundary}\r\n`)]);
      if (m.preamble) body = Buffer.concat([Buffer.from("this is a preamble\r\n"), body]);
      add({
        name: `multipart/${name} ${path}`,
        category: "multipart",
        method: "POST",
        path: prefix() + path,
        headers: { "content-type": `multipart/form-data; boundary=${m.headerBoundary ?? boundary}` },
        body,
        chunked: maybeChunked(),
        expect,
      });
    }
  for (const path of ENDPOINTS) {
    add({
      name: `multipart/empty body ${path}`,
      category: "multipart",
      method: "POST",
      path,
      headers: { "content-type": MP_TYPE },
      body: Buffer.alloc(0),
      expect: 400,
    });
    const cut = multipartBody([imagePart(goodPng, "png"), imagePart(goodPng, "png", 1)], BOUNDARY);
    add({
      name: `multipart/cut in second part's headers ${path}`,
      category: "multipart",
      method: "POST",
      path,
      headers: { "content-type": MP_TYPE },
      body: cut.subarray(0, goodPng.length + 200),
      expect: 400,
    });
  }

  // --- methods and routes
  for (const [method, path] of [
    ["GET", "/classify"],
    ["GET", "/embed/invariant"],
    ["GET", "/v1/embed/equivariant"],
    ["GET", "/generate"],
    ["PUT", "/classify"],
    ["PATCH", "/generate"],
    ["DELETE", "/embed/invariant"],
    ["POST", "/v1/nope"],
    ["POST", "/classify/../generate"],
  ] as const)
    add({
      name: `route/${method} ${path}`,
      category: "route",
      method,
      path,
      headers: { "content-type": "application/json" },
      body: method === "GET" ? Buffer.alloc(0) : Buffer.from("{}"),
      expect: "4xx",
    });

  return cases;
}

/** Cases per category, for reports. */
export function countByCategory(cases: CorpusCase[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of cases) out[c.category] = (out[c.category] ?? 0) + 1;
  return out;
}
