import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { DEFAULT_MODEL } from "../src/embed/cli.js";
import { decodeImage } from "../src/embed/decode.js";
import { IdxRecordReader } from "../src/embed/idx-stream.js";
import { NPY_HEADER_BYTES, npyHeader, parseNpyHeader } from "../src/embed/npy.js";
import { f32, planEmbed, runEmbed, type EmbedOptions, type EmbedResult } from "../src/embed/run.js";
import { compareCodePoints } from "../src/input/image-folder.js";
import { readIdxFile } from "../src/input/idx.js";
import { loadEngine, type Engine } from "../src/inference/index.js";
import { assertOneLineError, runCli } from "./helpers/cli.js";
import { jpegImage, pixelByte, pngImage, readNpy, writeIdx } from "./helpers/embed.js";
import { MNIST_DIR, tempDir } from "./helpers/paths.js";

let engine: Engine;
const MODEL = { height: 28, width: 28, channels: 1 };
const PX = 784;

before(async () => {
  engine = await loadEngine(DEFAULT_MODEL, { engine: "onnx", threads: 1 });
});
after(async () => {
  await engine.dispose();
});

async function embed(opts: EmbedOptions): Promise<EmbedResult & { log: string[] }> {
  const lines: string[] = [];
  const o = { progress: false, log: (s: string) => void lines.push(s), ...opts };
  const r = await runEmbed(await planEmbed(o), engine, o);
  return { ...r, log: lines };
}

/** What the engine itself returns for these images: v, mu, logvar, and every class's p by label. */
async function reference(x: Float32Array, n: number) {
  const v = await engine.embedInvariant(x, n);
  const { mu, logvar } = await engine.encodeEquivariant(x, n, v);
  const K = engine.classNames.length;
  const scores = await engine.classify(x, n, K);
  const p = new Float32Array(n * K);
  scores.forEach((row, i) => row.forEach((s) => (p[i * K + s.label] = s.p)));
  return { v, mu, logvar, class: p, top: scores.map((r) => r[0]) };
}

test("npy header: fixed 128 bytes, NumPy 1.0, rewritable shape", () => {
  for (const [rows, cols] of [
    [0, 16],
    [123456789012, 10],
  ]) {
    const h = npyHeader(rows, cols);
    assert.equal(h.length, NPY_HEADER_BYTES);
    assert.equal(h.length % 64, 0);
    assert.deepEqual([h[6], h[7]], [1, 0]);
    const p = parseNpyHeader(h);
    assert.deepEqual(p.shape, [rows, cols]);
    assert.equal(p.descr, "<f4");
    assert.equal(p.dataOffset, 128);
  }
});

test("names sort by code point at every level, not by UTF-16 unit", () => {
  const names = ["😀.png", "\uff5e.png", "B.png", "a10.png", "a2.png", "ä.png"];
  assert.deepEqual([...names].sort(compareCodePoints), [
    "B.png",
    "a10.png",
    "a2.png",
    "ä.png",
    "\uff5e.png",
    "😀.png",
  ]);
});

test("f32 prints the shortest decimal that reads back as the same float32", () => {
  for (const x of [0, 1, -2.5, 0.1, 1e-30, 3.4e38, 123.456, -0.000123]) {
    const y = Math.fround(x);
    assert.equal(Math.fround(Number(f32(y))), y);
  }
  assert.equal(f32(Math.fround(0.1)), "0.1");
});

test("streaming IDX reader: gz and raw, from any record, in any chunk size", async () => {
  const dir = tempDir("equivae-embed-");
  const raw = join(dir, "x-idx3-ubyte");
  writeIdx(raw, 2500, 5, 7);
  writeFileSync(`${raw}.gz`, gzipSync(readFileSync(raw)));
  const all = readIdxFile(raw).data;
  for (const path of [raw, `${raw}.gz`]) {
    for (const start of [0, 1, 2499, 2500]) {
      const r = await IdxRecordReader.open(path, start);
      const parts: Uint8Array[] = [];
      for (let b; (b = await r.read(333)).length > 0;) parts.push(b);
      r.close();
      assert.deepEqual(Buffer.concat(parts), Buffer.from(all.subarray(start * 35)), `${path} from ${start}`);
    }
  }
  // a truncated file is one clear error before anything is embedded
  writeFileSync(join(dir, "cut-idx3-ubyte"), readFileSync(raw).subarray(0, 1000));
  await assert.rejects(IdxRecordReader.open(join(dir, "cut-idx3-ubyte")), /truncated\?/);
});

test("directory of PNG/JPEG -> .npy: equal to the engine, sorted ids, corrupt files skipped and listed", async () => {
  const dir = tempDir("equivae-embed-");
  const src = join(dir, "images");
  mkdirSync(join(src, "sub", "deeper"), { recursive: true });
  mkdirSync(join(src, "a"), { recursive: true });
  const files: Record<string, Buffer> = {
    "b.png": pngImage(1),
    "a/10.png": pngImage(2),
    "a/2.png": pngImage(3, 28, 28, "rgb"),
    "a10.png": pngImage(4, 28, 28, "rgba"),
    "sub/deeper/z.PNG": pngImage(5, 56, 42), // resized
    "sub/photo.jpg": jpegImage(6),
    "sub/small.jpeg": jpegImage(7, 14, 14), // enlarged
    "😀.png": pngImage(8),
    "\uff5e.png": pngImage(9),
    "c.png": pngImage(10),
    "bad-bytes.png": Buffer.concat([pngImage(11).subarray(0, 40), Buffer.from("garbage")]),
    "text.png": Buffer.from("this is a text file, not a PNG\n"),
    "sub/deeper/empty.jpg": Buffer.alloc(0),
  };
  for (const [name, b] of Object.entries(files)) writeFileSync(join(src, name), b);
  writeFileSync(join(src, "README.txt"), "not an image, ignored");
  for (let i = 0; i < 7; i++) writeFileSync(join(src, "sub", `m${i}.png`), pngImage(20 + i)); // > 1 batch

  const out = join(dir, "out.npy");
  const r = await embed({ input: src, output: out, batchSize: 4 });
  const expectOrder = [
    "a/10.png",
    "a/2.png",
    "a10.png",
    "b.png",
    "c.png",
    "sub/deeper/z.PNG",
    ...Array.from({ length: 7 }, (_, i) => `sub/m${i}.png`),
    "sub/photo.jpg",
    "sub/small.jpeg",
    "\uff5e.png",
    "😀.png",
  ];
  const ids = readFileSync(`${out}.ids.txt`, "utf8").split("\n").slice(0, -1);
  assert.deepEqual(ids, expectOrder);
  assert.equal(r.embedded, expectOrder.length);
  assert.equal(r.skipped, 3);
  assert.equal(r.ignored, 1);
  const skipped = readFileSync(`${out}.skipped.txt`, "utf8");
  assert.deepEqual(
    skipped.split("\n").map((l) => l.split("\t")[0]),
    ["bad-bytes.png", "sub/deeper/empty.jpg", "text.png", ""],
  );
  assert.match(skipped, /text\.png\tnot a PNG, JPEG, WebP or GIF image/);
  assert.match(skipped, /bad-bytes\.png\tcannot decode PNG/);
  assert.equal(r.log.filter((l) => l.startsWith("skipped ")).length, 3);
  assert.ok(!existsSync(`${out}.progress.json`), "the resume state is removed when complete");

  const n = ids.length;
  const x = new Float32Array(n * PX);
  await Promise.all(
    ids.map((id, i) => decodeImage(readFileSync(join(src, id)), MODEL, x.subarray(i * PX, (i + 1) * PX))),
  );
  // the PNG path is exactly pixel / 255 for 8-bit grey images
  const direct = Float32Array.from({ length: PX }, (_, k) => pixelByte(1, k) / 255);
  assert.deepEqual(x.subarray(ids.indexOf("b.png") * PX, (ids.indexOf("b.png") + 1) * PX), direct);
  const ref = await reference(x, n);
  for (const rep of ["v", "mu", "logvar", "class"] as const) {
    const a = readNpy(join(dir, `out.${rep}.npy`));
    const d = rep === "class" ? 10 : 16;
    assert.deepEqual(a.shape, [n, d], rep);
    assert.deepEqual(
      a.data,
      rep === "class" ? Float32Array.from(ref.class) : ref[rep],
      `${rep} equals the engine's`,
    );
  }
});

test("NDJSON in -> NDJSON out: equal to the engine; bad base64, bad JSON and bad images are skipped", async () => {
  const dir = tempDir("equivae-embed-");
  const b64 = (b: Buffer) => b.toString("base64");
  const lines = [
    JSON.stringify({ id: "first", image: b64(pngImage(1)) }),
    JSON.stringify({ id: 42, image: `data:image/png;base64,${b64(pngImage(2, 28, 28, "rgb"))}` }),
    "",
    JSON.stringify(b64(pngImage(3))), // a JSON string: id = line number (4)
    b64(jpegImage(4)), // bare base64: id = 5
    JSON.stringify({ id: "bad-b64", image: "!!!not base64!!!" }),
    "{not json",
    JSON.stringify({ id: "not-image", image: b64(Buffer.from("hello world, no image here")) }),
    JSON.stringify({ image: b64(pngImage(5, 40, 40)) }), // no id: 9
    JSON.stringify({ id: "no-image" }),
  ];
  const input = join(dir, "in.ndjson");
  writeFileSync(input, lines.join("\n") + "\n");
  const out = join(dir, "out.ndjson");
  const r = await embed({ input, output: out, batchSize: 3 });
  const rows = readFileSync(out, "utf8")
    .trim()
    .split("\n")
    .map(
      (l) =>
        JSON.parse(l) as {
          id: string;
          v: number[];
          mu: number[];
          logvar: number[];
          class: number;
          p: number;
        },
    );
  assert.deepEqual(
    rows.map((x) => x.id),
    ["first", "42", "4", "5", "9"],
  );
  assert.equal(r.skipped, 4);
  assert.deepEqual(
    readFileSync(`${out}.skipped.txt`, "utf8")
      .trim()
      .split("\n")
      .map((l) => l.split("\t")[0]),
    ["bad-b64", "7", "not-image", "no-image"],
  );
  assert.match(readFileSync(`${out}.skipped.txt`, "utf8"), /bad-b64\tnot valid base64/);
  const images = [pngImage(1), pngImage(2, 28, 28, "rgb"), pngImage(3), jpegImage(4), pngImage(5, 40, 40)];
  const x = new Float32Array(images.length * PX);
  await Promise.all(images.map((b, i) => decodeImage(b, MODEL, x.subarray(i * PX, (i + 1) * PX))));
  const ref = await reference(x, images.length);
  rows.forEach((row, i) => {
    assert.deepEqual(Object.keys(row), ["id", "v", "mu", "logvar", "class", "p"]);
    for (const rep of ["v", "mu", "logvar"] as const)
      assert.deepEqual(
        Float32Array.from(row[rep]),
        ref[rep].subarray(i * 16, (i + 1) * 16),
        `${rep} of ${row.id}`,
      );
    assert.equal(row.class, ref.top[i].label);
    assert.equal(Math.fround(row.p), Math.fround(ref.top[i].p));
  });
});

test("--what picks representations; one representation is exactly the --output file", async () => {
  const dir = tempDir("equivae-embed-");
  const input = join(dir, "x.idx");
  writeIdx(input, 50);
  await embed({ input, output: join(dir, "v.npy"), what: ["v"] });
  assert.ok(existsSync(join(dir, "v.npy")) && !existsSync(join(dir, "v.v.npy")));
  await embed({ input, output: join(dir, "two.npy"), what: ["mu", "class"] });
  assert.ok(existsSync(join(dir, "two.mu.npy")) && existsSync(join(dir, "two.class.npy")));
  assert.ok(!existsSync(join(dir, "two.v.npy")));
  await embed({ input, output: join(dir, "c.ndjson"), what: ["class"] });
  const first = JSON.parse(readFileSync(join(dir, "c.ndjson"), "utf8").split("\n")[0]) as object;
  assert.deepEqual(Object.keys(first), ["id", "class", "p"]);
});

test("CLI: MNIST t10k IDX (gz) -> .npy equals the engine on the same pixels", () => {
  const dir = tempDir("equivae-embed-");
  const input = join(MNIST_DIR, "t10k-images-idx3-ubyte.gz");
  const out = join(dir, "mnist.npy");
  const r = runCli(["embed", "--input", input, "--output", out, "--what", "v", "--threads", "1", "--quiet"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^embedded 10,000 of 10,000 images, skipped 0 \(idx input/);
  return (async () => {
    const idx = readIdxFile(input);
    const x = Float32Array.from(idx.data, (b) => b / 255);
    const ref = await engine.embedInvariant(x, 10000);
    const a = readNpy(out);
    assert.deepEqual(a.shape, [10000, 16]);
    assert.deepEqual(a.data, ref);
    const ids = readFileSync(`${out}.ids.txt`, "utf8");
    assert.equal(ids, Array.from({ length: 10000 }, (_, i) => `${i}\n`).join(""));
  })();
});

test("CLI errors are one clear line", () => {
  const dir = tempDir("equivae-embed-");
  const input = join(dir, "x.idx");
  writeIdx(input, 3);
  writeFileSync(join(dir, "notes.txt"), "hello");
  const e = (args: string[]) => runCli(["embed", ...args]);
  assertOneLineError(
    e(["--input", join(dir, "missing.idx"), "--output", join(dir, "o.npy")]),
    /input not found: .*missing\.idx/,
  );
  assertOneLineError(
    e(["--input", input, "--format", "csv", "--output", join(dir, "o.npy")]),
    /unknown input format 'csv' \(choose idx, dir, ndjson\)/,
  );
  assertOneLineError(
    e(["--input", join(dir, "notes.txt"), "--output", join(dir, "o.npy")]),
    /cannot tell the format of .*--format/,
  );
  assertOneLineError(
    e(["--input", input, "--output", join(dir, "no", "such", "o.npy")]),
    /output directory does not exist: .*no\/such/,
  );
  assertOneLineError(e(["--input", input, "--output", join(dir, "o.csv")]), /cannot tell the output format/);
  assertOneLineError(
    e(["--input", input, "--output", join(dir, "o.npy"), "--what", "v,z"]),
    /unknown representation 'z'/,
  );
  assertOneLineError(e(["--output", join(dir, "o.npy")]), /--input is required/);
  assertOneLineError(
    e(["--input", input, "--output", join(dir, "o.npy"), "--model", dir]),
    /manifest|checkpoint/i,
  );
  const ok = e(["--input", input, "--output", join(dir, "o.npy"), "--quiet"]);
  assert.equal(ok.code, 0, ok.stderr);
  assertOneLineError(
    e(["--input", input, "--output", join(dir, "o.npy")]),
    /o\.v\.npy exists \(pass --force to overwrite\)/,
  );
  assert.equal(e(["--input", input, "--output", join(dir, "o.npy"), "--quiet", "--force"]).code, 0);
});
