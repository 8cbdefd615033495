import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { colMajorIndex, getArray, parseMat, readMatFile } from "../src/data/mat.js";
import { loadSvhn, readSvhnFile, SVHN_CLASS_NAMES, SVHN_VALIDATION_SIZE } from "../src/data/svhn.js";
import { DATA_DIR_ENV } from "../src/data/mnist.js";
import { InputError } from "../src/util/errors.js";
import { MI, MX, svhnMat, svhnPixel, writeMat } from "./helpers/mat-writer.js";
import { tempDir } from "./helpers/paths.js";

const LABELS = [10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 3];

function isUserError(re: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof InputError, `expected a InputError, got ${String(e)}`);
    assert.match(e.message, re);
    assert.ok(!e.message.includes("\n"), "one line");
    return true;
  };
}

function checkSvhnPixels(pixels: Uint8Array, n: number, offset = 0): void {
  assert.equal(pixels.length, n * 32 * 32 * 3);
  for (let k = 0; k < n; k++)
    for (let r = 0; r < 32; r++)
      for (let c = 0; c < 32; c++)
        for (let ch = 0; ch < 3; ch++) {
          const got = pixels[((k * 32 + r) * 32 + c) * 3 + ch];
          if (got !== svhnPixel(r, c, ch, k + offset)) {
            assert.fail(
              `pixel (n=${k}, row=${r}, col=${c}, ch=${ch}) = ${got}, want ${svhnPixel(r, c, ch, k + offset)}`,
            );
          }
        }
}

test("column-major indexing: the first subscript varies fastest", () => {
  assert.equal(colMajorIndex([2, 3], [1, 0]), 1);
  assert.equal(colMajorIndex([2, 3], [0, 1]), 2);
  assert.equal(colMajorIndex([32, 32, 3, 5], [1, 2, 1, 4]), 1 + 32 * (2 + 32 * (1 + 3 * 4)));
});

for (const compress of [false, true]) {
  for (const bigEndian of [false, true]) {
    test(`SVHN layout round trip (${compress ? "miCOMPRESSED" : "plain"}, ${bigEndian ? "big-endian MI" : "little-endian IM"})`, () => {
      const buf = svhnMat(LABELS, { compress, bigEndian });
      const mat = parseMat(buf, "t.mat");
      assert.equal(mat.littleEndian, !bigEndian);
      assert.match(mat.header, /^MATLAB 5\.0 MAT-file/);
      const x = getArray(mat, "X");
      assert.equal(x.className, "uint8");
      assert.deepEqual(x.dims, [32, 32, 3, LABELS.length]);
      assert.ok(x.data instanceof Uint8Array);
      // Column-major: X(r, c, ch, n).
      assert.equal(x.data[colMajorIndex(x.dims, [5, 9, 2, 7])], svhnPixel(5, 9, 2, 7));
      const y = getArray(mat, "y");
      assert.equal(y.className, "double");
      assert.ok(y.data instanceof Float64Array);
      assert.deepEqual([...y.data], LABELS);

      const dir = tempDir();
      const p = join(dir, "train_32x32.mat");
      writeFileSync(p, buf);
      const s = readSvhnFile(p);
      assert.deepEqual([s.n, s.height, s.width, s.channels], [LABELS.length, 32, 32, 3]);
      checkSvhnPixels(s.pixels, s.n);
      assert.deepEqual([...s.labels], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 3]);
    });
  }
}

test("numeric data stored in a smaller type than the class (as MATLAB writes it) is converted", () => {
  for (const bigEndian of [false, true]) {
    const buf = writeMat(
      [
        { name: "y", cls: MX.DOUBLE, dims: [3, 1], data: [10, 1, 255], storeAs: MI.UINT8 },
        { name: "neg", cls: MX.DOUBLE, dims: [1, 3], data: [-300, 0, 300], storeAs: MI.INT16 },
        { name: "s", cls: MX.SINGLE, dims: [2, 1], data: [65535, 2], storeAs: MI.UINT16 },
        { name: "i32", cls: MX.INT32, dims: [1, 2], data: [-5, 7], storeAs: MI.INT8 },
        { name: "u16", cls: MX.UINT16, dims: [1, 2], data: [40000, 1] },
        { name: "f", cls: MX.SINGLE, dims: [1, 2], data: [0.5, -1.25] },
        { name: "i8", cls: MX.INT8, dims: [1, 2], data: [-128, 127] },
        { name: "u32", cls: MX.UINT32, dims: [1, 1], data: [4000000000], storeAs: MI.UINT32 },
        { name: "d", cls: MX.DOUBLE, dims: [1, 2], data: [Math.PI, -1e300] },
        // scipy.io.savemat writes Python integer arrays as int64.
        { name: "i64", cls: MX.INT64, dims: [2, 1], data: [10, -3] },
        { name: "u64", cls: MX.UINT64, dims: [1, 1], data: [2 ** 53 - 1] },
      ],
      { bigEndian },
    );
    const m = parseMat(buf, "t.mat");
    assert.deepEqual([...getArray(m, "y").data], [10, 1, 255]);
    assert.ok(getArray(m, "y").data instanceof Float64Array);
    assert.deepEqual([...getArray(m, "neg").data], [-300, 0, 300]);
    assert.deepEqual([...getArray(m, "s").data], [65535, 2]);
    assert.ok(getArray(m, "s").data instanceof Float32Array);
    assert.deepEqual([...getArray(m, "i32").data], [-5, 7]);
    assert.ok(getArray(m, "i32").data instanceof Int32Array);
    assert.deepEqual([...getArray(m, "u16").data], [40000, 1]);
    assert.deepEqual([...getArray(m, "f").data], [0.5, -1.25]);
    assert.deepEqual([...getArray(m, "i8").data], [-128, 127]);
    assert.deepEqual([...getArray(m, "u32").data], [4000000000]);
    assert.deepEqual([...getArray(m, "d").data], [Math.PI, -1e300]);
    assert.deepEqual([...getArray(m, "i64").data], [10, -3]);
    assert.equal(getArray(m, "i64").className, "int64");
    assert.deepEqual([...getArray(m, "u64").data], [2 ** 53 - 1]);
  }
});

test("small data elements (names and data of <= 4 bytes) and full tags read the same", () => {
  const vars = [
    { name: "X", cls: MX.UINT8, dims: [1, 1], data: [42] },
    { name: "ab", cls: MX.INT16, dims: [1, 2], data: [-2, 513] }, // 4 bytes of data: small
    { name: "longer_name", cls: MX.UINT8, dims: [1, 3], data: [1, 2, 3] },
  ];
  const small = writeMat(vars, { small: true });
  const full = writeMat(vars, { small: false });
  assert.ok(small.length < full.length);
  for (const buf of [small, full, writeMat(vars, { small: true, bigEndian: true, compress: true })]) {
    const m = parseMat(buf, "s.mat");
    assert.deepEqual([...getArray(m, "X").data], [42]);
    assert.deepEqual([...getArray(m, "ab").data], [-2, 513]);
    assert.deepEqual([...getArray(m, "longer_name").data], [1, 2, 3]);
    assert.deepEqual([...m.variables.keys()], ["X", "ab", "longer_name"]);
  }
});

test("a v7.3 (HDF5) file is a clear error naming the conversion", () => {
  const text =
    "MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 .";
  const buf = new Uint8Array(1024);
  buf.set(Buffer.from(text.padEnd(128, " "), "latin1"));
  buf.set([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a], 512);
  const re =
    /v73\.mat: a MATLAB v7\.3 \(HDF5\) MAT-file is not supported; .*scipy\.io\.savemat\(.*format='5'\).*save\(f, '-v7'\)/;
  assert.throws(() => parseMat(buf, "v73.mat"), isUserError(re));
  // The HDF5 signature at 512 alone is enough.
  const bare = new Uint8Array(1024);
  bare.set([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a], 512);
  assert.throws(() => parseMat(bare, "v73.mat"), isUserError(re));
});

test("a v4 file, a non-MAT file and a bad version are clear errors", () => {
  // v4: MOPT type 0 (little-endian double, full), 1x1, real, name "a".
  const v4 = new Uint8Array(20 + 2 + 8);
  const dv = new DataView(v4.buffer);
  [0, 1, 1, 0, 2].forEach((v, i) => dv.setInt32(4 * i, v, true));
  v4.set([0x61, 0], 20);
  dv.setFloat64(22, 3.5, true);
  assert.throws(
    () => parseMat(v4, "old.mat"),
    isUserError(/old\.mat: a MATLAB v4 MAT-file is not supported; .*format='5'/),
  );
  // Big-endian v4 (M = 1).
  const v4be = new Uint8Array(30);
  const dvb = new DataView(v4be.buffer);
  [1000, 1, 1, 0, 2].forEach((v, i) => dvb.setInt32(4 * i, v, false));
  v4be.set([0x61, 0], 20);
  assert.throws(() => parseMat(v4be, "old.mat"), isUserError(/v4 MAT-file/));

  const png = new Uint8Array(200);
  png.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  assert.throws(() => parseMat(png, "pic.mat"), isUserError(/pic\.mat: not a MATLAB \.mat file/));
  assert.throws(
    () => parseMat(Buffer.from("hello"), "h.mat"),
    isUserError(/h\.mat: not a MATLAB \.mat file/),
  );

  const bad = svhnMat([1, 2]);
  bad[126] = 0x41;
  assert.throws(
    () => parseMat(bad, "e.mat"),
    isUserError(/e\.mat: not a valid MAT-file \(bad endian indicator/),
  );
  const ver = svhnMat([1, 2]);
  ver[124] = 0x00;
  ver[125] = 0x02;
  assert.throws(() => parseMat(ver, "v.mat"), isUserError(/v\.mat: unsupported MAT-file version 0x0200/));
});

test("truncated files are clear errors (plain, compressed, header)", () => {
  const plain = svhnMat(LABELS);
  for (const cut of [plain.length - 1, 128 + 4, 128 + 100, Math.floor(plain.length / 2)]) {
    assert.throws(() => parseMat(plain.subarray(0, cut), "cut.mat"), isUserError(/cut\.mat: truncated/));
  }
  const z = svhnMat(LABELS, { compress: true });
  assert.throws(
    () => parseMat(z.subarray(0, z.length - 20), "cz.mat"),
    isUserError(/cz\.mat: (truncated|corrupt or truncated compressed element)/),
  );
  assert.throws(
    () => parseMat(plain.subarray(0, 60), "h.mat"),
    isUserError(/h\.mat: truncated MAT-file \(60 bytes/),
  );
  // Trailing zero padding after the last element is accepted.
  const padded = new Uint8Array(plain.length + 4);
  padded.set(plain);
  assert.deepEqual([...getArray(parseMat(padded, "p.mat"), "y").data], LABELS);
});

test("unsupported variables (complex, cell, struct, sparse, char) are named only when asked for", () => {
  const buf = writeMat(
    [
      { name: "z", cls: MX.DOUBLE, dims: [1, 2], data: [1, 2], complex: true },
      { name: "c", cls: MX.CELL, dims: [0, 0] },
      { name: "st", cls: MX.STRUCT, dims: [0, 0] },
      { name: "sp", cls: MX.SPARSE, dims: [0, 0] },
      { name: "txt", cls: MX.CHAR, dims: [1, 2], data: [104, 105], storeAs: MI.UINT16 },
      { name: "ok", cls: MX.UINT8, dims: [1, 1], data: [7] },
    ],
    { compress: true },
  );
  const m = parseMat(buf, "u.mat");
  assert.deepEqual([...getArray(m, "ok").data], [7]);
  assert.throws(
    () => getArray(m, "z"),
    isUserError(/u\.mat: variable 'z' is a complex double array; only real, full numeric/),
  );
  assert.throws(() => getArray(m, "c"), isUserError(/variable 'c' is a cell array/));
  assert.throws(() => getArray(m, "st"), isUserError(/variable 'st' is a struct/));
  assert.throws(() => getArray(m, "sp"), isUserError(/variable 'sp' is a sparse array/));
  assert.throws(() => getArray(m, "txt"), isUserError(/variable 'txt' is a char array/));
  assert.throws(
    () => getArray(m, "X"),
    isUserError(/u\.mat: no variable 'X' \(the file holds 'z', 'c', 'st', 'sp', 'txt', 'ok'\)/),
  );
  // `only` skips the rest.
  const o = parseMat(buf, "u.mat", { only: ["ok"] });
  assert.deepEqual([...o.variables.keys()], ["ok"]);
  assert.throws(
    () => readMatFile(join(tempDir(), "nope.mat")),
    isUserError(/missing data file: .*nope\.mat/),
  );
});

test("int64 labels (scipy's default) work for SVHN; integers beyond 2^53 are a clear error", () => {
  const dir = tempDir();
  const p = join(dir, "test_32x32.mat");
  writeFileSync(
    p,
    writeMat(
      [
        { name: "X", cls: MX.UINT8, dims: [32, 32, 3, 3], data: new Uint8Array(32 * 32 * 3 * 3) },
        { name: "y", cls: MX.INT64, dims: [3, 1], data: [10, 1, 9] },
      ],
      { compress: true },
    ),
  );
  assert.deepEqual([...readSvhnFile(p).labels], [0, 1, 9]);
  const big = writeMat([{ name: "n", cls: MX.UINT64, dims: [1, 1], data: [2 ** 60] }]);
  assert.throws(
    () => parseMat(big, "b.mat"),
    isUserError(/b\.mat: variable 'n' \(uint64\) holds an integer beyond 2\^53/),
  );
});

test("a data length that disagrees with the dimensions is a clear error", () => {
  const buf = writeMat([{ name: "X", cls: MX.UINT8, dims: [2, 3], data: [1, 2, 3, 4, 5] }]);
  assert.throws(
    () => parseMat(buf, "d.mat"),
    isUserError(/d\.mat: variable 'X' \(2x3 uint8\) has 5 bytes of miUINT8 data, expected 6 \(truncated\?\)/),
  );
});

function svhnDir(
  train: number[],
  testLabels: number[] | undefined,
  opts: { compress?: boolean } = {},
): string {
  const dir = tempDir();
  writeFileSync(
    join(dir, "train_32x32.mat"),
    svhnMat(train, { compress: opts.compress, yStoreAs: MI.UINT8 }),
  );
  if (testLabels)
    writeFileSync(join(dir, "test_32x32.mat"), svhnMat(testLabels, { compress: !opts.compress }));
  return dir;
}

test("loadSvhn: the last validationSize training images are the validation split; 10 -> 0", () => {
  assert.equal(SVHN_VALIDATION_SIZE, 3257);
  assert.deepEqual(SVHN_CLASS_NAMES, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
  const dir = svhnDir(LABELS, [10, 10, 5, 1, 2], { compress: true });
  const d = loadSvhn({ dataDir: dir, validationSize: 3, withTest: true });
  assert.equal(d.name, "svhn");
  assert.equal(d.source, dir);
  assert.deepEqual(d.classNames, SVHN_CLASS_NAMES);
  assert.equal(d.train.n, 9);
  assert.equal(d.validation.n, 3);
  assert.equal(d.test!.n, 5);
  assert.deepEqual([...d.train.labels], [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual([...d.validation.labels], [9, 0, 3]);
  assert.deepEqual([...d.test!.labels], [0, 0, 5, 1, 2]);
  checkSvhnPixels(d.train.pixels, 9);
  checkSvhnPixels(d.validation.pixels, 3, 9);
  checkSvhnPixels(d.test!.pixels, 5);
  for (const s of [d.train, d.validation, d.test!])
    assert.deepEqual([s.height, s.width, s.channels], [32, 32, 3]);
  // No test unless asked; trainSize / valSize keep the first N of a split.
  const small = loadSvhn({ dataDir: dir, validationSize: 3, trainSize: 4, valSize: 1 });
  assert.equal(small.test, undefined);
  assert.deepEqual([...small.train.labels], [0, 1, 2, 3]);
  assert.deepEqual([...small.validation.labels], [9]);
  checkSvhnPixels(small.validation.pixels, 1, 9);
  // The data dir may come from $EQUIVAE_DATA_DIR.
  const old = process.env[DATA_DIR_ENV];
  process.env[DATA_DIR_ENV] = dir;
  try {
    assert.equal(loadSvhn({ validationSize: 2 }).validation.n, 2);
  } finally {
    if (old === undefined) delete process.env[DATA_DIR_ENV];
    else process.env[DATA_DIR_ENV] = old;
  }
});

test("loadSvhn errors: no dir, missing files, too few images, count mismatch, bad labels, bad X shape", () => {
  const old = process.env[DATA_DIR_ENV];
  delete process.env[DATA_DIR_ENV];
  try {
    assert.throws(
      () => loadSvhn(),
      isUserError(/SVHN: no data directory .*--data-dir.*train_32x32\.mat.*ufldl\.stanford\.edu/),
    );
  } finally {
    if (old !== undefined) process.env[DATA_DIR_ENV] = old;
  }
  assert.throws(
    () => loadSvhn({ dataDir: join(tempDir(), "none") }),
    isUserError(/data directory not found/),
  );
  assert.throws(
    () => loadSvhn({ dataDir: tempDir() }),
    isUserError(/missing data file: .*train_32x32\.mat \(download/),
  );
  const noTest = svhnDir(LABELS, undefined);
  assert.throws(
    () => loadSvhn({ dataDir: noTest, validationSize: 2, withTest: true }),
    isUserError(/missing data file: .*test_32x32\.mat/),
  );
  assert.throws(
    () => loadSvhn({ dataDir: noTest }),
    isUserError(/has 12 images|12 images; need more than the 3257 validation images/),
  );

  const dir = tempDir();
  const p = join(dir, "train_32x32.mat");
  writeFileSync(
    p,
    writeMat([
      { name: "X", cls: MX.UINT8, dims: [32, 32, 3, 2], data: new Uint8Array(32 * 32 * 3 * 2) },
      { name: "y", cls: MX.DOUBLE, dims: [3, 1], data: [1, 2, 3] },
    ]),
  );
  assert.throws(() => readSvhnFile(p), isUserError(/count mismatch: X has 2 images but y has 3 labels/));
  writeFileSync(p, svhnMat([1, 0, 2]));
  assert.throws(() => readSvhnFile(p), isUserError(/label 0 at index 1 is outside 1\.\.10/));
  writeFileSync(p, svhnMat([1, 11]));
  assert.throws(() => readSvhnFile(p), isUserError(/label 11 at index 1 is outside 1\.\.10/));
  writeFileSync(p, svhnMat([1, 2.5]));
  assert.throws(() => readSvhnFile(p), isUserError(/label 2\.5 at index 1/));
  writeFileSync(
    p,
    writeMat([
      { name: "X", cls: MX.UINT8, dims: [2, 3, 32, 32], data: new Uint8Array(32 * 32 * 3 * 2) },
      { name: "y", cls: MX.DOUBLE, dims: [2, 1], data: [1, 2] },
    ]),
  );
  assert.throws(() => readSvhnFile(p), isUserError(/X should be 32x32x3xN .*got 2x3x32x32/));
  writeFileSync(p, writeMat([{ name: "y", cls: MX.DOUBLE, dims: [2, 1], data: [1, 2] }]));
  assert.throws(() => readSvhnFile(p), isUserError(/no variable 'X' \(the file holds 'y'\)/));
  writeFileSync(
    p,
    writeMat([
      { name: "X", cls: MX.UINT8, dims: [32, 32, 3, 2], data: new Uint8Array(32 * 32 * 3 * 2) },
      { name: "y", cls: MX.DOUBLE, dims: [2, 2], data: [1, 2, 3, 4] },
    ]),
  );
  assert.throws(() => readSvhnFile(p), isUserError(/y should be an N x 1 label vector, got 2x2/));
});
