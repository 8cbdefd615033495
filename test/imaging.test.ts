import { test } from "node:test";
import { PNG_SIGNATURE, pngChunk } from "../src/imaging/png-fast.js";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { deflateSync } from "node:zlib";
import { PNG } from "pngjs";
import sharp from "sharp";
import { readIdxPair } from "../src/data/mnist.js";
import {
  ImagingError,
  MIN_IMAGE_SIDE,
  decodeBase64,
  decodeImage,
  imagingStats,
  readHeader,
  toModelInput,
  type ImagingErrorKind,
  type ModelInput,
  type Raster,
} from "../src/imaging/index.js";
import { MNIST_DIR } from "./helpers/paths.js";

const MAX = 40_000_000;
const dec = (b: Uint8Array, what = "img") => decodeImage(b, { maxPixels: MAX, what });

// ------------------------------------------------------------------------------------ helpers

const chunk = pngChunk;
const PNG_SIG = PNG_SIGNATURE;

function ihdr(w: number, h: number, depth = 8, colourType = 0): Buffer {
  const d = Buffer.alloc(13);
  d.writeUInt32BE(w, 0);
  d.writeUInt32BE(h, 4);
  d[8] = depth;
  d[9] = colourType;
  return chunk("IHDR", d);
}

/** A 28x28 grey "digit": a bright bar and a diagonal on black, 16 grey levels (exact in a GIF). */
function digit(w = 28, h = 28): Uint8Array {
  const px = new Uint8Array(w * h);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const bar = y >= 5 && y <= 8 && x >= 6 && x <= 21;
      const diag = Math.abs(x - (27 - y)) <= 2 && y > 8 && y < 24;
      px[y * w + x] = bar || diag ? 255 - 17 * ((x + y) % 4) : 17 * ((x * y) % 3);
    }
  return px;
}

/** An 8-colour RGB image (exact in a GIF). */
function colourImage(w = 28, h = 28): Uint8Array {
  const px = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) {
    const k = (((i % w) >> 2) + Math.floor(i / w / 4)) % 8;
    px.set([k & 1 ? 230 : 20, k & 2 ? 200 : 40, k & 4 ? 180 : 10], i * 3);
  }
  return px;
}

function greyPng(px: Uint8Array, w: number, h: number): Buffer {
  const p = new PNG({ width: w, height: h });
  for (let i = 0; i < w * h; i++) p.data.set([px[i], px[i], px[i], 255], i * 4);
  return PNG.sync.write(p, { colorType: 0 });
}

/** A sharp pipeline over raw pixels; 1 channel stays grey in the output (sharp writes sRGB otherwise). */
const raw = (px: Uint8Array, w: number, h: number, channels: 1 | 3 | 4) => {
  const s = sharp(px, { raw: { width: w, height: h, channels } });
  return channels === 1 ? s.toColourspace("b-w") : s;
};

async function rejects(p: Promise<unknown>, kind: ImagingErrorKind, re?: RegExp): Promise<string> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ImagingError, `expected an ImagingError, got ${String(e)}`);
    assert.equal(e.kind, kind, e.message);
    if (re) assert.match(e.message, re);
    return e.message;
  }
  assert.fail(`expected ${kind}`);
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const GREY28: ModelInput = { height: 28, width: 28, channels: 1 };

function modelInput(r: Raster, model = GREY28, opts = {}) {
  const out = new Float32Array(model.height * model.width * model.channels);
  const pre = toModelInput(r, model, opts, out);
  return { out, pre };
}

// -------------------------------------------------------------------------------------- tests

test("libvips is set up for worker threads: one thread per image", () => {
  assert.equal(sharp.concurrency(), 1);
  assert.equal(MIN_IMAGE_SIDE, 8);
});

test("PNG, lossless WebP and GIF of the same image decode to equal pixels; JPEG within tolerance", async () => {
  const g = digit();
  const png = greyPng(g, 28, 28);
  const webp = await raw(g, 28, 28, 1).webp({ lossless: true }).toBuffer();
  const gif = await raw(g, 28, 28, 1).gif({ dither: 0 }).toBuffer();
  const jpeg = await raw(g, 28, 28, 1).jpeg({ quality: 95 }).toBuffer();
  const want = Float32Array.from(g, (v) => v / 255);
  const rp = await dec(png);
  assert.deepEqual([rp.source, rp.colour, rp.colourChannels, rp.alpha], ["png", "grey", 1, undefined]);
  assert.deepEqual(rp.data, want);
  for (const [name, b] of [
    ["webp", webp],
    ["gif", gif],
  ] as const) {
    const r = await dec(b);
    assert.equal(r.source, name);
    assert.equal(r.alpha, undefined, `${name}: opaque`);
    const { out, pre } = modelInput(r);
    assert.deepEqual(out, want, `${name} equals the PNG`);
    assert.equal(pre.source, name);
  }
  const rj = await dec(jpeg);
  assert.deepEqual([rj.source, rj.colour, rj.colourChannels], ["jpeg", "grey", 1]);
  assert.ok(maxAbsDiff(rj.data, want) < 0.12, `JPEG max diff ${maxAbsDiff(rj.data, want)}`);

  // Colour: PNG, WebP and GIF give the same RGB values.
  const c = colourImage();
  const cwant = Float32Array.from(c, (v) => v / 255);
  for (const b of [
    await raw(c, 28, 28, 3).png().toBuffer(),
    await raw(c, 28, 28, 3).webp({ lossless: true }).toBuffer(),
    await raw(c, 28, 28, 3).gif({ dither: 0 }).toBuffer(),
  ]) {
    const r = await dec(b);
    assert.equal(r.colourChannels, 3, r.source);
    assert.deepEqual(r.data, cwant, r.source);
  }
  const cj = await dec(await raw(c, 28, 28, 3).jpeg({ quality: 95, chromaSubsampling: "4:4:4" }).toBuffer());
  assert.ok(maxAbsDiff(cj.data, cwant) < 0.15, `JPEG max diff ${maxAbsDiff(cj.data, cwant)}`);
});

test("the PNG fast path gives libvips's pixels exactly, and leaves everything else to sharp", async () => {
  let seed = 7;
  const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24;
  const s0 = imagingStats();
  let fast = 0;
  for (const colorType of [0, 2, 4, 6] as const)
    for (const filterType of [-1, 0, 1, 2, 3, 4])
      for (const [w, h] of [
        [28, 28],
        [9, 31],
        [128, 128],
      ]) {
        const p = new PNG({ width: w, height: h });
        // Smooth with noise, so that every filter has work to do; some transparent pixels.
        for (let i = 0; i < w * h; i++)
          p.data.set([(i * 3 + rnd()) & 255, (i >> 2) & 255, rnd(), i % 7 ? 255 : rnd()], i * 4);
        const png = PNG.sync.write(p, { colorType, filterType, inputHasAlpha: true });
        const a = await dec(png);
        const b = await decodeImage(png, { maxPixels: MAX, what: "img", fastPath: false });
        assert.deepEqual(a, b, `colour type ${colorType}, filter ${filterType}, ${w}x${h}`);
        fast++;
      }
  const s1 = imagingStats();
  assert.equal(s1.fastPath - s0.fastPath, fast, "every plain PNG took the fast path");
  // Not taken: larger, 16-bit, palette, interlaced, with an ICC profile or EXIF orientation.
  const g = new Uint8Array(200 * 200).fill(90);
  for (const b of [
    greyPng(g, 200, 200),
    await raw(g.subarray(0, 784), 28, 28, 1).toColourspace("grey16").png().toBuffer(),
    await raw(colourImage(), 28, 28, 3).png({ palette: true }).toBuffer(),
    await raw(colourImage(), 28, 28, 3).png({ progressive: true }).toBuffer(),
    await raw(colourImage(), 28, 28, 3).png().withMetadata().toBuffer(),
  ]) {
    const before = imagingStats().fastPath;
    const a = await dec(b);
    assert.equal(imagingStats().fastPath, before, "sharp decoded it");
    assert.deepEqual(a, await decodeImage(b, { maxPixels: MAX, what: "img", fastPath: false }));
  }
});

test("headers: format, size, colour and bit depth without decoding", async () => {
  const before = imagingStats().decoded;
  const g = digit(40, 30);
  const cases: Array<[Buffer, string, string, number]> = [
    [greyPng(g, 40, 30), "png", "grey", 8],
    [await raw(g, 40, 30, 1).jpeg().toBuffer(), "jpeg", "grey", 8],
    [await raw(g, 40, 30, 1).webp({ lossless: true }).toBuffer(), "webp", "rgb", 8],
    [await raw(g, 40, 30, 1).webp().toBuffer(), "webp", "rgb", 8],
    [await raw(new Uint8Array(4800).fill(9), 40, 30, 4).webp().toBuffer(), "webp", "rgba", 8],
    [await raw(g, 40, 30, 1).gif().toBuffer(), "gif", "palette", 8],
    [await raw(new Uint8Array(4800), 40, 30, 4).toColourspace("rgb16").png().toBuffer(), "png", "rgba", 16],
  ];
  for (const [b, format, colour, depth] of cases) {
    const h = readHeader(b, "x");
    assert.deepEqual(
      [h.format, h.width, h.height, h.colour, h.bitDepth, h.orientation],
      [format, 40, 30, colour, depth, 1],
    );
  }
  assert.equal(imagingStats().decoded, before);
});

test("a PNG cut inside IDAT, or with too little IDAT data, is the same invalid-image error every time", async () => {
  const g = digit();
  const png = greyPng(g, 28, 28);
  const cut = png.subarray(0, png.length - 30); // inside IDAT (IEND is the last 12 bytes)
  // A well-formed IDAT chunk (valid CRC) whose zlib stream holds only 10 of the 28 rows.
  const rows = Buffer.alloc(10 * 29, 7);
  for (let y = 0; y < 10; y++) rows[y * 29] = 0; // filter type 0
  const short = Buffer.concat([
    PNG_SIG,
    ihdr(28, 28),
    chunk("IDAT", deflateSync(rows)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
  const noData = Buffer.concat([PNG_SIG, ihdr(28, 28), chunk("IEND", Buffer.alloc(0))]);
  const fast0 = imagingStats().fastPath;
  for (const [name, b] of [
    ["cut", cut],
    ["short IDAT", short],
    ["no IDAT", noData],
  ] as const) {
    const messages = new Set<string>();
    for (let i = 0; i < 20; i++) messages.add(await rejects(dec(b, name), "invalid-image"));
    assert.equal(messages.size, 1, `${name}: ${[...messages].join(" | ")}`);
    assert.match([...messages][0], new RegExp(`^${name}: cannot decode PNG: corrupt or truncated data$`));
  }
  assert.equal(imagingStats().fastPath, fast0, "damaged PNGs are never taken by the fast path");
});

test("a JPEG without scan data, or cut short, is invalid-image (deterministic)", async () => {
  const jpeg = await raw(digit(), 28, 28, 1).jpeg().toBuffer();
  const sos = jpeg.indexOf(Buffer.from([0xff, 0xda]));
  const noScan = Buffer.concat([jpeg.subarray(0, sos), Buffer.from([0xff, 0xd9])]);
  const cut = jpeg.subarray(0, jpeg.length - 40);
  for (const b of [noScan, cut]) {
    const messages = new Set<string>();
    for (let i = 0; i < 20; i++)
      messages.add(await rejects(dec(b, "j"), "invalid-image", /^j: cannot decode JPEG/));
    assert.equal(messages.size, 1);
  }
  // Also a WebP and a GIF cut in half.
  const webp = await raw(digit(), 28, 28, 1).webp({ lossless: true }).toBuffer();
  await rejects(dec(webp.subarray(0, webp.length >> 1), "w"), "invalid-image", /^w: cannot decode WebP/);
  const gif = await raw(digit(), 28, 28, 1).gif().toBuffer();
  await rejects(dec(gif.subarray(0, gif.length >> 1), "g"), "invalid-image", /^g: cannot decode GIF/);
});

test("header-only bombs are refused from the header: nothing is decoded", async () => {
  const png = Buffer.concat([PNG_SIG, ihdr(100000, 100000)]);
  const webp = Buffer.alloc(30);
  webp.write("RIFF", 0, "latin1");
  webp.writeUInt32LE(22, 4);
  webp.write("WEBPVP8X", 8, "latin1");
  webp.writeUInt32LE(10, 16);
  webp.writeUIntLE(100000 - 1, 24, 3);
  webp.writeUIntLE(100000 - 1, 27, 3);
  const gif = Buffer.from("GIF89a\xff\xff\xff\xff\x00\x00\x00", "latin1");
  const jpeg = Buffer.from([
    0xff, 0xd8, 0xff, 0xc0, 0x00, 0x0b, 0x08, 0xff, 0xff, 0xff, 0xff, 0x01, 0x01, 0x11, 0x00,
  ]);
  const s0 = imagingStats();
  for (const [b, size] of [
    [png, "100000x100000"],
    [webp, "100000x100000"],
    [gif, "65535x65535"],
    [jpeg, "65535x65535"],
  ] as const)
    await rejects(
      dec(b, "bomb"),
      "image-too-large",
      new RegExp(`^bomb: ${size} = \\d+ pixels is over the limit`),
    );
  // Too small, zero size, and not an image at all: also refused before decoding.
  await rejects(dec(greyPng(new Uint8Array(16), 4, 4)), "image-too-small", /minimum of 8x8/);
  await rejects(dec(Buffer.concat([PNG_SIG, ihdr(0, 10)])), "invalid-image", /image of size 0x10/);
  await rejects(
    dec(Buffer.from("BM6\0\0\0\0\0")),
    "unsupported-image-type",
    /^img: not a PNG, JPEG, WebP or GIF image$/,
  );
  await rejects(dec(Buffer.alloc(0)), "unsupported-image-type");
  const s1 = imagingStats();
  assert.equal(s1.decoded, s0.decoded, "the decoder was not called");
  assert.equal(s1.refusedBeforeDecode, s0.refusedBeforeDecode + 8);
});

test("16-bit PNGs (RGBA and grey) decode to 8 bits; alpha is kept and composited", async () => {
  const n = 30 * 20;
  const rgba = new Uint8Array(n * 4);
  for (let i = 0; i < n; i++) rgba.set([(i * 5) & 255, 100, 200, i % 2 ? 255 : 0], i * 4);
  const png16 = await raw(rgba, 30, 20, 4).toColourspace("rgb16").png().toBuffer();
  assert.equal(readHeader(png16, "x").bitDepth, 16);
  const r = await dec(png16);
  assert.deepEqual([r.width, r.height, r.colourChannels, r.colour], [30, 20, 3, "rgba"]);
  assert.ok(r.alpha, "alpha kept");
  for (let i = 0; i < n; i++) {
    assert.ok(Math.abs(r.data[i * 3] - rgba[i * 4] / 255) <= 1 / 255 + 1e-6);
    assert.equal(r.alpha[i], i % 2 ? 1 : 0);
  }
  const model = { height: 20, width: 30, channels: 3 };
  const { out, pre } = modelInput(r, model, { background: "white" });
  assert.equal(pre.alpha_composited_on, "white");
  assert.deepEqual([out[0], out[1], out[2]], [1, 1, 1]); // transparent pixel 0 on white

  const grey = new Uint8Array(n * 2);
  for (let i = 0; i < n; i++) grey.set([(i * 3) & 255, 255], i * 2);
  const g16 = await sharp(grey, { raw: { width: 30, height: 20, channels: 2 } })
    .toColourspace("grey16")
    .png()
    .toBuffer();
  const h = readHeader(g16, "x");
  assert.deepEqual([h.colour, h.bitDepth], ["grey+alpha", 16]);
  const rg = await dec(g16);
  assert.deepEqual([rg.colourChannels, rg.alpha], [1, undefined]);
  for (let i = 0; i < n; i++) assert.ok(Math.abs(rg.data[i] - grey[i * 2] / 255) <= 1 / 255 + 1e-6);
});

test("EXIF orientation is applied: a sideways photo comes out upright (JPEG, PNG, WebP)", async () => {
  // Upright: 40 wide, 24 high, a gradient with a bright block in the top-left corner.
  const W = 40;
  const H = 24;
  const up = new Uint8Array(W * H);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++)
      up[y * W + x] = x < 12 && y < 8 ? 250 : Math.round((x / W) * 120 + (y / H) * 60);
  const want = Float32Array.from(up, (v) => v / 255);
  // Orientation 6: the viewer turns the stored image 90 degrees clockwise, so store it turned 90 counter-clockwise.
  const stored = await raw(up, W, H, 1).rotate(270).toColourspace("b-w").raw().toBuffer();
  const src = () => raw(stored, H, W, 1);
  const jpeg = await src().jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
  assert.deepEqual(readHeader(jpeg, "x").orientation, 6);
  assert.deepEqual([readHeader(jpeg, "x").width, readHeader(jpeg, "x").height], [H, W]);
  const rj = await dec(jpeg);
  assert.deepEqual([rj.width, rj.height, rj.orientation], [W, H, 6]);
  // (withMetadata writes an sRGB profile, so the JPEG is RGB; compare in grey.)
  const { out: oj, pre } = modelInput(rj, { height: H, width: W, channels: 1 });
  assert.ok(maxAbsDiff(oj, want) < 0.1, `upright within JPEG error (${maxAbsDiff(oj, want)})`);
  assert.equal(pre.oriented, 6);
  assert.deepEqual([pre.original.height, pre.original.width], [H, W]);
  // Lossless formats come back exactly.
  for (const b of [
    await src().png().withMetadata({ orientation: 6 }).toBuffer(),
    await src().webp({ lossless: true }).withMetadata({ orientation: 6 }).toBuffer(),
  ]) {
    const r = await dec(b);
    assert.equal(r.orientation, 6, r.source);
    const { out } = modelInput(r, { height: H, width: W, channels: 1 });
    assert.deepEqual(out, want, r.source);
  }
  // Orientation 8 is the other way round; 1 is reported as nothing.
  const other = await raw(up, W, H, 1)
    .rotate(90)
    .toColourspace("b-w")
    .png()
    .withMetadata({ orientation: 8 })
    .toBuffer();
  assert.deepEqual(modelInput(await dec(other), { height: H, width: W, channels: 1 }).out, want);
  const plain = await dec(greyPng(up, W, H));
  assert.equal(plain.orientation, undefined);
  assert.equal(modelInput(plain, { height: H, width: W, channels: 1 }).pre.oriented, undefined);
});

test('invert: "auto" inverts a dark-on-light MNIST digit and leaves a light-on-dark one alone', async (t) => {
  const images = join(MNIST_DIR, "t10k-images-idx3-ubyte.gz");
  if (!existsSync(images)) return t.skip(`no MNIST at ${MNIST_DIR}`);
  const mnist = readIdxPair(images, join(MNIST_DIR, "t10k-labels-idx1-ubyte.gz"), 10);
  for (let i = 0; i < 50; i++) {
    const px = mnist.pixels.subarray(i * 784, (i + 1) * 784);
    const light = await dec(greyPng(px, 28, 28)); // white digit on black: the model's convention
    const dark = await dec(
      greyPng(
        Uint8Array.from(px, (v) => 255 - v),
        28,
        28,
      ),
    ); // ink on paper
    const a = modelInput(light, GREY28, { invert: "auto" });
    assert.equal(a.pre.inverted, undefined);
    assert.equal(a.pre.invert_auto?.background, "dark");
    assert.ok(a.pre.invert_auto!.border_mean < 0.1);
    assert.deepEqual(
      a.out,
      Float32Array.from(px, (v) => v / 255),
    );
    const b = modelInput(dark, GREY28, { invert: "auto" });
    assert.equal(b.pre.inverted, true);
    assert.equal(b.pre.invert_auto?.background, "light");
    assert.ok(b.pre.invert_auto!.border_mean > 0.9);
    assert.ok(maxAbsDiff(b.out, a.out) < 1e-6, `image ${i}: inverted back to the original`);
    // A light-background model inverts the other one; "any" never inverts.
    assert.equal(
      modelInput(light, { ...GREY28, background: "light" }, { invert: "auto" }).pre.inverted,
      true,
    );
    const any = modelInput(dark, { ...GREY28, background: "any" }, { invert: "auto" });
    assert.deepEqual([any.pre.inverted, any.pre.invert_auto?.background], [undefined, "light"]);
  }
  // A photo-like case: a large grey-paper JPEG with a dark stroke, resized to 28x28.
  const W = 200;
  const paper = new Uint8Array(W * W);
  for (let i = 0; i < W * W; i++) {
    const x = i % W;
    const y = Math.floor(i / W);
    paper[i] = Math.abs(x - y) < 12 && x > 40 && x < 160 ? 30 : 185 + ((x * 7 + y * 13) % 20);
  }
  const photo = await dec(await raw(paper, W, W, 1).jpeg().toBuffer());
  const p = modelInput(photo, GREY28, { invert: "auto" });
  assert.equal(p.pre.inverted, true);
  assert.deepEqual(p.pre.resized_from, [W, W]);
  assert.ok(p.pre.invert_auto!.border_mean > 0.7 && p.pre.invert_auto!.border_mean < 0.82);
  assert.equal(p.pre.invert_auto!.border_mean, Math.round(p.pre.invert_auto!.border_mean * 1000) / 1000);
  // invert: true / false as before.
  assert.equal(modelInput(photo, GREY28, { invert: true }).pre.invert_auto, undefined);
  assert.equal(modelInput(photo, GREY28, { invert: false }).pre.inverted, undefined);
});

test("base64 errors are ImagingError invalid-base64; a good decode counts in imagingStats", async () => {
  assert.throws(
    () => decodeBase64("!!!", "images[0]"),
    (e: unknown) => {
      assert.ok(e instanceof ImagingError);
      assert.equal(e.kind, "invalid-base64");
      assert.equal(e.message, "images[0]: not valid base64");
      assert.equal(e.name, "ImagingError");
      return true;
    },
  );
  const png = greyPng(digit(), 28, 28);
  assert.deepEqual(decodeBase64(`data:image/png;base64,${png.toString("base64")}`, "x"), png);
  const before = imagingStats();
  await dec(png);
  assert.equal(imagingStats().decoded, before.decoded + 1);
  assert.equal(imagingStats().failed, before.failed);
});
