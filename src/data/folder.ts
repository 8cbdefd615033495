/**
 * Image-folder datasets: your own classes, one folder per class.
 *
 *     root/<class name>/*.png|*.jpg|*.jpeg|*.webp|*.gif   training (+ validation) images
 *     root/test/<class name>/*.png|...                    optional test images (or `testDir`)
 *
 * - Classes are the non-hidden subfolders of root, sorted by Unicode code point; `root/test` is the
 *   test split (not a class) when it holds subfolders. Files are sorted the same way (the walk of
 *   src/input/image-folder.ts); other files (.txt, .DS_Store, ...) and deeper folders are ignored.
 *   Test classes must be training classes.
 * - Images are decoded with the serving code (src/imaging, sharp): EXIF orientation applied,
 *   transparent pixels composited on black, resized to a fixed size (`size`, else the first readable
 *   image's size; area averaging down, bilinear up, aspect ratio not kept). Images under 8 pixels a
 *   side are rejected, not upscaled.
 * - Colour: 3 channels (RGB; grey images repeated) unless every training/validation image is grey
 *   (a grey PNG/JPEG, or R = G = B everywhere), then 1; `channels` forces either (colour -> grey by
 *   Rec. 601 luminance).
 * - Unreadable images (corrupt, not PNG/JPEG/WebP/GIF, too small or too large) are skipped and
 *   counted, with one warning; it is an error only if no image is readable.
 * - Validation: per class, a seeded random `validationFraction` (default 10%) of the readable images,
 *   rounded, at least 1 if the class has >= 3 images, always leaving >= 2 for training. The draw
 *   depends only on the seed, the class name and its file list, so adding a class does not change the
 *   others' splits.
 */
import { existsSync, promises as fsp, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { decodeImage, toModelInput } from "../imaging/index.js";
import { IMAGE_EXTENSIONS, isImageName, walkFolder } from "../input/image-folder.js";
import { InputError } from "../util/errors.js";
import { Rng } from "../util/rng.js";
import type { ImageSet, LabelledData } from "./dataset.js";
import { range } from "./dataset.js";

export const DEFAULT_VALIDATION_FRACTION = 0.1;
/** Largest image (width x height) decoded; larger files are skipped as unreadable. */
export const DEFAULT_MAX_PIXELS = 1 << 25;

export interface ImageSize {
  height: number;
  width: number;
}

export interface FolderOptions {
  root: string;
  /** Test images in `<testDir>/<class>/`; default `root/test` when it holds class folders. */
  testDir?: string;
  /** Read the test split (kept apart until evaluation). */
  withTest?: boolean;
  /** Size every image is resized to; default the first readable image's size. */
  size?: ImageSize;
  /** 1 (grey) or 3 (RGB); default 3 unless all images are grey. */
  channels?: 1 | 3;
  /** Fraction of each class held out for validation (default 0.1; 0 = none). */
  validationFraction?: number;
  seed?: number;
  maxPixels?: number;
  /** Use only the first N images of a split (quick runs). */
  trainSize?: number;
  valSize?: number;
  /** Receives the one-line warning about skipped images (default console.warn). */
  warn?: (message: string) => void;
}

export interface SkippedImage {
  path: string;
  reason: string;
}

export interface FolderData extends LabelledData {
  /** Unreadable images that were skipped (all splits). */
  skipped: SkippedImage[];
  /** How many images were resized to the common size. */
  resized: number;
  /** The files behind each row of train / validation / test, for reports. */
  files: { train: string[]; validation: string[]; test?: string[] };
}

/** "32" or "32x48" (height x width) -> a size. */
export function parseImageSize(s: string): ImageSize {
  const m = /^(\d+)(?:x(\d+))?$/.exec(s.trim());
  const h = m ? Number(m[1]) : NaN;
  const w = m ? Number(m[2] ?? m[1]) : NaN;
  if (!m || h < 1 || w < 1 || h > 4096 || w > 4096) {
    throw new InputError(`bad image size '${s}': expected N or HxW (e.g. 32 or 64x48), 1..4096`);
  }
  return { height: h, width: w };
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** Class folders of a split directory (but `exclude`): name -> sorted image paths. */
async function listClasses(dir: string, exclude?: string): Promise<Map<string, string[]>> {
  const classes = new Map<string, string[]>();
  for await (const e of walkFolder(dir, 2)) {
    const [name, file, deeper] = e.rel.split("/");
    if (name === exclude || deeper !== undefined) continue;
    if (e.error !== undefined) throw new InputError(`${join(dir, e.rel)}: ${e.error}`);
    if (file === undefined) {
      if (e.kind === "dir") classes.set(name, []);
    } else if (e.kind === "file" && isImageName(file)) classes.get(name)!.push(join(dir, e.rel));
  }
  return classes;
}

/** Images directly in `dir` (not in class folders). */
async function countLooseImages(dir: string): Promise<number> {
  let n = 0;
  for await (const e of walkFolder(dir, 1)) if (e.kind === "file" && isImageName(e.rel)) n++;
  return n;
}

/** A per-class seed: FNV-1a over the class name's UTF-8 bytes, mixed with the run seed. */
function classSeed(seed: number, name: string): number {
  let h = 0x811c9dc5 ^ (seed >>> 0);
  for (const b of Buffer.from(name, "utf8")) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h >>> 0;
}

/** How many of a class's n images go to validation. */
export function validationCount(n: number, fraction: number): number {
  if (fraction <= 0 || n < 3) return 0;
  return Math.min(n - 2, Math.max(1, Math.round(fraction * n)));
}

interface Decoded {
  /** One image, H*W*C uint8 (C = 3 until the final channel decision, unless forced to 1). */
  pixels: Uint8Array;
  path: string;
}

class Decoder {
  size?: ImageSize;
  resized = 0;
  readonly skipped: SkippedImage[] = [];
  private buf?: Float32Array;

  constructor(
    readonly channels: 1 | 3,
    readonly maxPixels: number,
    size?: ImageSize,
  ) {
    this.size = size;
  }

  /** Decodes one file to the common size, or records it as skipped. */
  async decode(path: string): Promise<Decoded | undefined> {
    let raster;
    try {
      raster = await decodeImage(await fsp.readFile(path), { maxPixels: this.maxPixels, what: path });
    } catch (e) {
      this.skipped.push({ path, reason: e instanceof Error ? e.message.split("\n")[0] : String(e) });
      return undefined;
    }
    this.size ??= { height: raster.height, width: raster.width };
    const { height, width } = this.size;
    const n = height * width * this.channels;
    if (!this.buf || this.buf.length !== n) this.buf = new Float32Array(n);
    const pre = toModelInput(raster, { height, width, channels: this.channels }, {}, this.buf);
    if (pre.resized_from) this.resized++;
    const pixels = new Uint8Array(n);
    for (let i = 0; i < n; i++) pixels[i] = Math.round(this.buf[i] * 255);
    return { pixels, path };
  }
}

function isGrey(p: Uint8Array): boolean {
  for (let i = 0; i < p.length; i += 3) if (p[i] !== p[i + 1] || p[i] !== p[i + 2]) return false;
  return true;
}

function toGrey(p: Uint8Array): Uint8Array {
  const out = new Uint8Array(p.length / 3);
  for (let i = 0; i < out.length; i++) out[i] = p[i * 3];
  return out;
}

function stack(
  items: Array<{ pixels: Uint8Array; label: number }>,
  size: ImageSize,
  channels: number,
): ImageSet {
  const d = size.height * size.width * channels;
  const pixels = new Uint8Array(items.length * d);
  const labels = new Int32Array(items.length);
  items.forEach((it, i) => {
    pixels.set(it.pixels, i * d);
    labels[i] = it.label;
  });
  return { pixels, labels, n: items.length, height: size.height, width: size.width, channels };
}

/** Loads `root/<class>/*.png|jpg|jpeg|webp|gif` with a seeded per-class validation split (see the module comment). */
export async function loadImageFolder(opts: FolderOptions): Promise<FolderData> {
  const root = resolve(opts.root);
  if (!existsSync(root)) throw new InputError(`image folder not found: ${root}`);
  if (!isDir(root)) throw new InputError(`image folder ${root} is not a directory`);
  const fraction = opts.validationFraction ?? DEFAULT_VALIDATION_FRACTION;
  if (!(fraction >= 0 && fraction < 1)) {
    throw new InputError(`validation fraction ${fraction} is outside [0, 1)`);
  }
  if (opts.channels !== undefined && opts.channels !== 1 && opts.channels !== 3) {
    throw new InputError(`channels must be 1 or 3, got ${String(opts.channels)}`);
  }
  if (opts.size && !(opts.size.height >= 1 && opts.size.width >= 1)) {
    throw new InputError(`bad image size ${opts.size.height}x${opts.size.width}`);
  }
  const seed = opts.seed ?? 1;
  const rootTest = join(root, "test");
  const testIsSplit = isDir(rootTest) && (await listClasses(rootTest)).size > 0;
  const classes = await listClasses(root, testIsSplit ? "test" : undefined);
  const classNames = [...classes.keys()];
  if (classNames.length === 0) {
    const loose = await countLooseImages(root);
    throw new InputError(
      loose > 0
        ? `image folder ${root} holds ${loose} images but no class folders; put each class's images in ${join(root, "<class name>")}/`
        : `image folder ${root} has no class folders (expected ${join(root, "<class name>")}/*.${IMAGE_EXTENSIONS.map((e) => e.slice(1)).join("|")})`,
    );
  }
  if (classNames.length < 2) {
    throw new InputError(
      `image folder ${root} has only one class folder ('${classNames[0]}'); at least 2 classes are needed`,
    );
  }
  const total = [...classes.values()].reduce((a, f) => a + f.length, 0);
  if (total === 0) {
    throw new InputError(
      `image folder ${root}: no images (${IMAGE_EXTENSIONS.join(", ")}) in its ${classNames.length} class folders`,
    );
  }

  // Decode to 3 channels (or the forced count); collapse to 1 afterwards if everything is grey.
  const dec = new Decoder(opts.channels ?? 3, opts.maxPixels ?? DEFAULT_MAX_PIXELS, opts.size);
  const perClass: Decoded[][] = [];
  for (const name of classNames) {
    const out: Decoded[] = [];
    for (const f of classes.get(name)!) {
      const d = await dec.decode(f);
      if (d) out.push(d);
    }
    perClass.push(out);
  }
  const readable = perClass.reduce((a, c) => a + c.length, 0);
  if (readable === 0) {
    throw new InputError(
      `image folder ${root}: none of its ${total} images could be read (first: ${dec.skipped[0].reason})`,
    );
  }
  classNames.forEach((name, k) => {
    if (perClass[k].length < 2) {
      const listed = classes.get(name)!.length;
      throw new InputError(
        `image folder ${root}: class '${name}' has ${perClass[k].length} readable image(s)` +
          (listed !== perClass[k].length ? ` (of ${listed})` : "") +
          `; every class needs at least 2 training images`,
      );
    }
  });
  let channels: 1 | 3 = opts.channels ?? 3;
  if (opts.channels === undefined && perClass.every((c) => c.every((d) => isGrey(d.pixels)))) {
    channels = 1;
    for (const c of perClass) for (const d of c) d.pixels = toGrey(d.pixels);
  }
  const size = dec.size!;

  const train: Array<{ pixels: Uint8Array; label: number; path: string }> = [];
  const val: Array<{ pixels: Uint8Array; label: number; path: string }> = [];
  perClass.forEach((items, label) => {
    const k = validationCount(items.length, fraction);
    const held = new Set(new Rng(classSeed(seed, classNames[label])).sample(range(0, items.length), k));
    items.forEach((d, i) => (held.has(i) ? val : train).push({ pixels: d.pixels, label, path: d.path }));
  });
  const trainItems = opts.trainSize !== undefined ? train.slice(0, opts.trainSize) : train;
  const valItems = opts.valSize !== undefined ? val.slice(0, opts.valSize) : val;

  let test: ImageSet | undefined;
  let testFiles: string[] | undefined;
  if (opts.withTest) {
    const testDir = opts.testDir !== undefined ? resolve(opts.testDir) : testIsSplit ? rootTest : undefined;
    if (testDir === undefined) {
      throw new InputError(
        `image folder ${root} has no test split (add ${join(rootTest, "<class name>")}/ or pass a test directory)`,
      );
    }
    if (!isDir(testDir)) throw new InputError(`test image folder not found: ${testDir}`);
    const tdec = new Decoder(channels, dec.maxPixels, size);
    const items: Array<{ pixels: Uint8Array; label: number; path: string }> = [];
    for (const [name, files] of await listClasses(testDir)) {
      const label = classNames.indexOf(name);
      if (label < 0) {
        throw new InputError(
          `test folder ${join(testDir, name)}: '${name}' is not a training class (${classNames.join(", ")})`,
        );
      }
      for (const f of files) {
        const d = await tdec.decode(f);
        if (d) items.push({ pixels: d.pixels, label, path: d.path });
      }
    }
    if (items.length === 0) {
      throw new InputError(
        `test folder ${testDir}: no readable images` +
          (tdec.skipped.length ? ` (first: ${tdec.skipped[0].reason})` : " in class folders"),
      );
    }
    test = stack(items, size, channels);
    testFiles = items.map((it) => it.path);
    dec.skipped.push(...tdec.skipped);
    dec.resized += tdec.resized;
  }

  if (dec.skipped.length > 0) {
    (opts.warn ?? console.warn)(
      `image folder ${root}: skipped ${dec.skipped.length} unreadable image(s), e.g. ${dec.skipped[0].reason}`,
    );
  }
  return {
    name: "folder",
    source: root,
    classNames,
    train: stack(trainItems, size, channels),
    validation: stack(valItems, size, channels),
    test,
    skipped: dec.skipped,
    resized: dec.resized,
    files: {
      train: trainItems.map((it) => it.path),
      validation: valItems.map((it) => it.path),
      test: testFiles,
    },
  };
}
