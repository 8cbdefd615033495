import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join, sep } from "node:path";
import { PNG } from "pngjs";
import jpeg from "jpeg-js";
import {
  loadImageFolder,
  parseImageSize,
  validationCount,
  type FolderData,
  type FolderOptions,
} from "../src/data/folder.js";
import { compareCodePoints, isImageName, walkFolder } from "../src/input/image-folder.js";
import { InputError } from "../src/util/errors.js";
import { tempDir } from "./helpers/paths.js";

type Rgb = [number, number, number];
const RED: Rgb = [220, 30, 40];
const GREEN: Rgb = [20, 200, 60];
const BLUE: Rgb = [30, 60, 230];
const BG: Rgb = [250, 240, 200];

/** RGBA of a w x h image: a filled shape of `fg` on `bg`; `v` varies the shape a little. */
function shape(kind: "circle" | "square" | "triangle", w: number, h: number, fg: Rgb, bg: Rgb, v: number) {
  const rgba = new Uint8Array(w * h * 4);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const u = (x + 0.5) / w - 0.5;
      const t = (y + 0.5) / h - 0.5;
      const r = 0.3 + 0.02 * v;
      const inside =
        kind === "circle"
          ? u * u + t * t < r * r
          : kind === "square"
            ? Math.abs(u) < r && Math.abs(t) < r
            : t > -r && Math.abs(u) < (t + r) / 2;
      const c = inside ? fg : bg;
      rgba.set([c[0], c[1], c[2], 255], (y * w + x) * 4);
    }
  return rgba;
}

function png(rgba: Uint8Array, w: number, h: number, grey = false): Buffer {
  const p = new PNG({ width: w, height: h, colorType: grey ? 0 : 2 });
  p.data.set(rgba);
  return PNG.sync.write(p, { colorType: grey ? 0 : 2 });
}

function jpg(rgba: Uint8Array, w: number, h: number): Buffer {
  return jpeg.encode({ data: Buffer.from(rgba), width: w, height: h }, 95).data;
}

/** RGB bytes of an RGBA image. */
function rgb(rgba: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < rgba.length; i += 4) out.push(rgba[i], rgba[i + 1], rgba[i + 2]);
  return out;
}

function write(path: string, data: Uint8Array | string): void {
  mkdirSync(join(path, ".."), { recursive: true });
  writeFileSync(path, data);
}

/**
 * 3 classes of coloured shapes, 16x16, PNG and JPEG; circle/ also holds a corrupt PNG and a note,
 * square/ a grey PNG, triangle/ one 24x24 image (resized); test/<class>/ holds 2 images per class.
 */
function makeDataset(): { root: string; firstCircle: Uint8Array } {
  const root = tempDir("equivae-folder-");
  const kinds = [
    ["circle", RED],
    ["square", GREEN],
    ["triangle", BLUE],
  ] as const;
  let firstCircle = new Uint8Array(0);
  for (const [kind, colour] of kinds) {
    for (let i = 0; i < 5; i++) {
      const size = kind === "triangle" && i === 4 ? 24 : 16;
      const im = shape(kind, size, size, colour, BG, i);
      if (kind === "circle" && i === 0) firstCircle = im;
      if (kind === "square" && i === 3)
        write(
          join(root, kind, `img${i}.png`),
          png(shape(kind, 16, 16, [90, 90, 90], [10, 10, 10], i), 16, 16, true),
        );
      else if (i % 2 === 1) write(join(root, kind, `img${i}.JPG`), jpg(im, size, size));
      else write(join(root, kind, `img${i}.png`), png(im, size, size));
    }
    for (let i = 0; i < 2; i++)
      write(join(root, "test", kind, `t${i}.png`), png(shape(kind, 16, 16, colour, BG, i), 16, 16));
  }
  write(
    join(root, "circle", "broken.png"),
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]),
  );
  write(join(root, "circle", "notes.txt"), "not an image");
  write(join(root, ".hidden", "x.png"), png(shape("circle", 16, 16, RED, BG, 0), 16, 16));
  return { root, firstCircle };
}

async function load(opts: FolderOptions) {
  const warnings: string[] = [];
  const d = await loadImageFolder({ warn: (m) => warnings.push(m), ...opts });
  return { d, warnings };
}

/** The pixels of the image loaded from `path`, wherever the split put it. */
function imageOf(d: FolderData, path: string): Uint8Array {
  for (const k of ["train", "validation", "test"] as const) {
    const row = d.files[k]?.indexOf(path) ?? -1;
    if (row >= 0) {
      const s = d[k]!;
      const n = s.height * s.width * s.channels;
      return s.pixels.subarray(row * n, (row + 1) * n);
    }
  }
  assert.fail(`${path} was not loaded`);
}

function isUserError(re: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof InputError, `expected a InputError, got ${String(e)}`);
    assert.match(e.message, re);
    return true;
  };
}

test("validation counts: 10% rounded, >= 1 from 3 images, always >= 2 left for training", () => {
  assert.deepEqual(
    [1, 2, 3, 4, 5, 14, 15, 20, 25, 100].map((n) => validationCount(n, 0.1)),
    [0, 0, 1, 1, 1, 1, 2, 2, 3, 10],
  );
  assert.equal(validationCount(3, 0.9), 1);
  assert.equal(validationCount(10, 0), 0);
  assert.deepEqual(parseImageSize("32"), { height: 32, width: 32 });
  assert.deepEqual(parseImageSize("64x48"), { height: 64, width: 48 });
  assert.throws(() => parseImageSize("big"), isUserError(/bad image size 'big'/));
  // Code-point order: upper case before lower case, astral characters after the BMP.
  assert.deepEqual(["b", "B", "a", "\u{1F600}", "\uFF5E"].sort(compareCodePoints), [
    "B",
    "a",
    "b",
    "\uFF5E",
    "\u{1F600}",
  ]);
});

test("the folder walk (training and embed): code-point order, no hidden entries, links followed but not round a cycle", async () => {
  const root = tempDir();
  mkdirSync(join(root, "b", "deep"), { recursive: true });
  mkdirSync(join(root, ".git"));
  for (const f of ["a.PNG", "B.txt", "._a.png", join("b", "deep", "x.jpg")]) writeFileSync(join(root, f), "");
  symlinkSync(root, join(root, "b", "loop"));
  symlinkSync(join(root, "b"), join(root, "c"));
  const walked = async (levels?: number) => {
    const out: string[] = [];
    for await (const e of walkFolder(root, levels)) out.push(`${e.kind} ${e.rel}`);
    return out;
  };
  assert.deepEqual(await walked(), [
    "file B.txt",
    "file a.PNG",
    "dir b",
    "dir b/deep",
    "file b/deep/x.jpg",
    "dir c",
    "dir c/deep",
    "file c/deep/x.jpg",
  ]);
  assert.deepEqual(await walked(1), ["file B.txt", "file a.PNG", "dir b", "dir c"]);
  assert.deepEqual(["a.PNG", "b.jpeg", "c.webp", "d.gif", "e.txt", "f.png.bak"].map(isImageName), [
    true,
    true,
    true,
    true,
    false,
    false,
  ]);
});

test("an image folder of coloured shapes: classes, shapes, colour, split, skipped files, test split", async () => {
  const { root, firstCircle } = makeDataset();
  const { d, warnings } = await load({ root, withTest: true });
  assert.equal(d.name, "folder");
  assert.equal(d.source, root);
  assert.deepEqual(d.classNames, ["circle", "square", "triangle"]);
  // 5 readable images per class: 1 to validation, 4 to training.
  assert.equal(d.train.n, 12);
  assert.equal(d.validation.n, 3);
  assert.deepEqual([...d.validation.labels], [0, 1, 2]);
  assert.deepEqual([...d.train.labels], [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
  for (const s of [d.train, d.validation, d.test!]) {
    assert.deepEqual([s.height, s.width, s.channels], [16, 16, 3]);
    assert.equal(s.pixels.length, s.n * 16 * 16 * 3);
  }
  // The corrupt PNG is skipped with one warning; notes.txt and .hidden/ are ignored.
  assert.equal(d.skipped.length, 1);
  assert.match(d.skipped[0].path, /circle[/\\]broken\.png$/);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /skipped 1 unreadable image\(s\), e\.g\. .*broken\.png/);
  assert.equal(d.resized, 1);
  // Files are in code-point order: img0.png, img1.JPG, ... and every path is in exactly one split.
  const all = [...d.files.train, ...d.files.validation].sort(compareCodePoints);
  assert.equal(new Set(all).size, 15);
  assert.ok(
    all.every((f) => !f.includes("broken") && !f.includes(".hidden") && !f.includes(`${sep}test${sep}`)),
  );
  // A PNG comes back pixel for pixel (colour kept).
  assert.deepEqual([...imageOf(d, join(root, "circle", "img0.png"))], rgb(firstCircle));
  // A JPEG keeps its colour approximately: the centre of a triangle is blue.
  const o = (12 * 16 + 8) * 3;
  const [r, g, b] = imageOf(d, join(root, "triangle", "img1.JPG")).subarray(o, o + 3);
  assert.ok(b > 180 && r < 90 && g < 110, `blue-ish, got ${r},${g},${b}`);
  // The grey PNG is repeated into 3 equal channels.
  const gp = imageOf(d, join(root, "square", "img3.png"));
  for (let i = 0; i < 768; i += 3) assert.ok(gp[i] === gp[i + 1] && gp[i] === gp[i + 2]);
  assert.equal(gp[(8 * 16 + 8) * 3], 90);
  assert.equal(gp[0], 10);
  // Test split from root/test/<class>.
  assert.equal(d.test!.n, 6);
  assert.deepEqual([...d.test!.labels], [0, 0, 1, 1, 2, 2]);
  assert.equal(d.files.test!.length, 6);
  // Without withTest the test split is not read.
  assert.equal((await load({ root })).d.test, undefined);
});

test("the split is seeded and per class: same seed, same split; a new class leaves the others alone", async () => {
  const { root } = makeDataset();
  const a = (await load({ root })).d;
  const b = (await load({ root })).d;
  assert.deepEqual(a.files, b.files);
  assert.deepEqual(a.validation.pixels, b.validation.pixels);
  const bySeed = new Set<string>();
  for (const seed of [1, 2, 3, 4, 5, 6])
    bySeed.add((await load({ root, seed })).d.files.validation.join("|"));
  assert.ok(bySeed.size > 1, "different seeds draw different validation images");
  for (let i = 0; i < 3; i++)
    write(join(root, "aardvark", `a${i}.png`), png(shape("square", 16, 16, RED, GREEN, i), 16, 16));
  const c = (await load({ root })).d;
  assert.deepEqual(c.classNames, ["aardvark", "circle", "square", "triangle"]);
  assert.deepEqual(c.files.validation.slice(1), a.files.validation);
  assert.equal(c.validation.n, 4);
  // Fraction 0: no validation images; larger fractions still leave 2 per class for training.
  assert.equal((await load({ root, validationFraction: 0 })).d.validation.n, 0);
  const big = (await load({ root, validationFraction: 0.9 })).d;
  assert.deepEqual([big.train.n, big.validation.n], [2 + 3 * 2, 1 + 3 * 3]);
});

test("size and channel options; an all-grey folder becomes 1 channel", async () => {
  const { root } = makeDataset();
  const { d } = await load({ root, size: { height: 8, width: 12 }, channels: 1, withTest: true });
  for (const s of [d.train, d.validation, d.test!])
    assert.deepEqual([s.height, s.width, s.channels], [8, 12, 1]);
  assert.equal(d.resized, 15 + 6);
  // Colour -> grey by luminance: a red circle's centre.
  const at = imageOf(d, join(root, "circle", "img0.png"))[4 * 12 + 6];
  assert.equal(at, Math.round(0.299 * RED[0] + 0.587 * RED[1] + 0.114 * RED[2]));

  const greyRoot = tempDir("equivae-grey-");
  for (const k of ["a", "b"])
    for (let j = 0; j < 3; j++) {
      const im = shape("circle", 10, 10, [200, 200, 200], [0, 0, 0], j);
      // Grey PNGs and an RGB PNG whose pixels are all R = G = B.
      write(join(greyRoot, k, `${j}.png`), png(im, 10, 10, j !== 2));
    }
  const g = (await load({ root: greyRoot })).d;
  assert.equal(g.train.channels, 1);
  assert.deepEqual([g.train.n, g.validation.n], [4, 2]);
  assert.equal(g.train.pixels.length, 4 * 100);
  assert.equal(Math.max(...g.train.pixels), 200);
  assert.equal((await load({ root: greyRoot, channels: 3 })).d.train.channels, 3);
});

test("clear errors for bad folders; unreadable images are fatal only if none can be read", async () => {
  const missing = join(tempDir(), "nope");
  await assert.rejects(
    () => loadImageFolder({ root: missing }),
    isUserError(/image folder not found: .*nope/),
  );

  const one = tempDir();
  write(join(one, "cats", "a.png"), png(shape("circle", 16, 16, RED, BG, 0), 16, 16));
  await assert.rejects(
    () => loadImageFolder({ root: one }),
    isUserError(/has only one class folder \('cats'\); at least 2 classes/),
  );

  const loose = tempDir();
  write(join(loose, "a.png"), png(shape("circle", 16, 16, RED, BG, 0), 16, 16));
  await assert.rejects(
    () => loadImageFolder({ root: loose }),
    isUserError(/holds 1 images but no class folders/),
  );
  await assert.rejects(() => loadImageFolder({ root: tempDir() }), isUserError(/has no class folders/));

  const empty = tempDir();
  mkdirSync(join(empty, "a"));
  mkdirSync(join(empty, "b"));
  write(join(empty, "b", "readme.txt"), "x");
  await assert.rejects(
    () => loadImageFolder({ root: empty }),
    isUserError(/no images \(\.png, \.jpg, \.jpeg, \.webp, \.gif\) in its 2 class folders/),
  );

  const bad = tempDir();
  for (const k of ["a", "b"]) for (let j = 0; j < 2; j++) write(join(bad, k, `${j}.jpg`), "garbage");
  await assert.rejects(
    () => loadImageFolder({ root: bad, warn: () => {} }),
    isUserError(/none of its 4 images could be read \(first: .*0\.jpg: not a PNG, JPEG, WebP or GIF image\)/),
  );

  const few = tempDir();
  for (let j = 0; j < 3; j++)
    write(join(few, "a", `${j}.png`), png(shape("circle", 16, 16, RED, BG, j), 16, 16));
  write(join(few, "b", "0.png"), png(shape("square", 16, 16, RED, BG, 0), 16, 16));
  write(join(few, "b", "1.png"), "corrupt");
  await assert.rejects(
    () => loadImageFolder({ root: few, warn: () => {} }),
    isUserError(/class 'b' has 1 readable image\(s\) \(of 2\); every class needs at least 2 training images/),
  );

  // Test splits: missing, and a class the training data lacks.
  const { root } = makeDataset();
  await assert.rejects(
    () => loadImageFolder({ root: one, withTest: true }),
    isUserError(/only one class folder/),
  );
  const noTest = tempDir();
  for (const k of ["a", "b"])
    for (let j = 0; j < 2; j++)
      write(join(noTest, k, `${j}.png`), png(shape("circle", 16, 16, RED, BG, j), 16, 16));
  await assert.rejects(
    () => loadImageFolder({ root: noTest, withTest: true }),
    isUserError(/has no test split/),
  );
  await assert.rejects(
    () => loadImageFolder({ root: noTest, withTest: true, testDir: join(noTest, "x") }),
    isUserError(/test image folder not found/),
  );
  const strayTest = tempDir();
  write(join(strayTest, "zebra", "0.png"), png(shape("circle", 16, 16, RED, BG, 0), 16, 16));
  await assert.rejects(
    () => loadImageFolder({ root, withTest: true, testDir: strayTest, warn: () => {} }),
    isUserError(/'zebra' is not a training class \(circle, square, triangle\)/),
  );
  // A separate test dir works like root/test; it may hold only some of the classes.
  const sepTest = tempDir();
  write(join(sepTest, "b", "t.png"), png(shape("square", 16, 16, BLUE, BG, 0), 16, 16));
  const sep = await loadImageFolder({ root: noTest, withTest: true, testDir: sepTest });
  assert.deepEqual([...sep.test!.labels], [1]);
  await assert.rejects(
    () => loadImageFolder({ root, validationFraction: 1 }),
    isUserError(/outside \[0, 1\)/),
  );
});
