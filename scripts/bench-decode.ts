// Decode time per image: the old decoder (pngjs / jpeg-js, synchronous, kept here only as the
// baseline) against src/imaging's decodeImage (sharp / libvips, and its pure-JS fast path for small
// plain PNGs), all to the same float Raster.
// Printed as a markdown table, not asserted. Usage: npm run bench:decode
// (BENCH_SECONDS per cell, default 1.5.)
import { cpus, loadavg } from "node:os";
import { PNG } from "pngjs";
import jpeg from "jpeg-js";
import sharp from "sharp";
import { decodeImage, fromRgba, readHeader, type Raster } from "../src/imaging/index.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 1.5);
const MAX_PIXELS = 40_000_000;

/** The decoder as it was before src/imaging (src/serve/images.ts at the time): header check, then pngjs / jpeg-js. */
function oldDecode(buf: Buffer): Raster {
  const hdr = readHeader(buf, "bench");
  if (hdr.format === "png") {
    const png = PNG.sync.read(buf);
    return fromRgba(png.data, png.height, png.width, hdr.colour, "png");
  }
  const img = jpeg.decode(buf, {
    useTArray: true,
    formatAsRGBA: true,
    maxResolutionInMP: Math.max(1, MAX_PIXELS / 1e6),
    maxMemoryUsageInMB: 1024,
  });
  return fromRgba(img.data, img.height, img.width, hdr.colour, "jpeg");
}

/** Microseconds per call: a warm-up, then as many calls as fit in SECONDS (at least 3). */
async function timeIt(f: () => unknown): Promise<number> {
  for (let i = 0; i < 2; i++) await f();
  let n = 0;
  const t0 = process.hrtime.bigint();
  let dt = 0;
  while (n < 3 || dt < SECONDS * 1e9) {
    await f();
    n++;
    dt = Number(process.hrtime.bigint() - t0);
  }
  return dt / 1e3 / n;
}

/** Microseconds per image with `k` decodes in flight (throughput over libuv's thread pool). */
async function timeConcurrent(f: () => Promise<unknown>, k: number): Promise<number> {
  const perRound = await timeIt(() => Promise.all(Array.from({ length: k }, f)));
  return perRound / k;
}

// Test images: smooth content with some noise (so that they compress like photos, not like flat fills).
function pattern(w: number, h: number, c: number, seed: number): Uint8Array {
  const px = new Uint8Array(w * h * c);
  let s = seed;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let k = 0; k < c; k++) {
        s = (Math.imul(s, 1103515245) + 12345) >>> 0;
        const v = 128 + 100 * Math.sin((x + 3 * k) / (w / 6)) * Math.cos(y / (h / 5)) + ((s >>> 24) % 16);
        px[(y * w + x) * c + k] = Math.max(0, Math.min(255, Math.round(v)));
      }
  return px;
}

const raw = (px: Uint8Array, w: number, h: number, channels: 1 | 3 | 4) =>
  sharp(px, { raw: { width: w, height: h, channels } });

const grey28 = pattern(28, 28, 1, 1);
const greyPng = (() => {
  const p = new PNG({ width: 28, height: 28 });
  for (let i = 0; i < 784; i++) p.data.set([grey28[i], grey28[i], grey28[i], 255], i * 4);
  return PNG.sync.write(p, { colorType: 0 });
})();
const cases: Array<[string, Buffer]> = [
  ["28x28 grey PNG (8-bit)", greyPng],
  [
    "28x28 grey JPEG (q90)",
    await raw(grey28, 28, 28, 1).toColourspace("b-w").jpeg({ quality: 90 }).toBuffer(),
  ],
  [
    "256x256 RGB JPEG (q90)",
    await raw(pattern(256, 256, 3, 2), 256, 256, 3)
      .jpeg({ quality: 90 })
      .toBuffer(),
  ],
  [
    "2000x2000 RGBA PNG (16-bit)",
    await raw(pattern(2000, 2000, 4, 3), 2000, 2000, 4)
      .toColourspace("rgb16")
      .png()
      .toBuffer(),
  ],
];

const before = loadavg();
console.log(
  `Decode to a float Raster, µs per image (mean over ~${SECONDS} s per cell); ${cpus().length} CPUs, ` +
    `${cpus()[0]?.model ?? "?"}; node ${process.version}, sharp ${sharp.versions.sharp}, libvips ${sharp.versions.vips}`,
);
console.log(`load average before: ${before.map((x) => x.toFixed(2)).join(" ")}`);
console.log("");
console.log(
  "| image | bytes | old: pngjs / jpeg-js | new: decodeImage | new, sharp only (no fast path) | new, 4 in flight | new / old |",
);
console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const [name, buf] of cases) {
  const oldUs = await timeIt(() => oldDecode(buf));
  const opts = { maxPixels: MAX_PIXELS, what: "bench" };
  const newUs = await timeIt(() => decodeImage(buf, opts));
  const sharpUs = await timeIt(() => decodeImage(buf, { ...opts, fastPath: false }));
  const conUs = await timeConcurrent(() => decodeImage(buf, opts), 4);
  const f = (us: number) => (us >= 1000 ? us.toFixed(0) : us.toFixed(1));
  console.log(
    `| ${name} | ${buf.length} | ${f(oldUs)} | ${f(newUs)} | ${f(sharpUs)} | ${f(conUs)} | ${(newUs / oldUs).toFixed(2)}x |`,
  );
}
console.log("");
console.log(
  `load average after: ${loadavg()
    .map((x) => x.toFixed(2))
    .join(" ")}`,
);
