import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import * as ort from "onnxruntime-node";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { initBackend } from "../src/backend/index.js";
import { batchPixels, range } from "../src/data/dataset.js";
import { loadIdxDataset } from "../src/data/mnist.js";
import { exportOnnx, onnxFiles } from "../src/export/onnx.js";
import { readManifest, type ExportManifest } from "../src/checkpoint/index.js";
import { defaultConfig } from "../src/model/config.js";
import { EquiVAE } from "../src/model/equivae.js";
import { loadCheckpoint } from "../src/train/checkpoint.js";
import { train } from "../src/train/trainer.js";
import { loadEngine, type Engine } from "../src/inference/index.js";
import { Rng } from "../src/util/rng.js";
import request from "supertest";
import { createApp } from "../src/serve/app.js";
import { runCli } from "./helpers/cli.js";
import { MNIST_DIR, ROOT, tempDir } from "./helpers/paths.js";
import { perturbBiases, saveRandomCheckpoint, uniform } from "./helpers/random-checkpoint.js";

const TOL = 1e-4;
const BATCHES = [1, 7, 256];
const GRAPH_FILES = ["invariant.onnx", "invariant_set.onnx", "equivariant.onnx", "decoder.onnx"];

const data = loadIdxDataset("mnist", { dataDir: MNIST_DIR, trainSize: 320, valSize: 100 });

let root: string;
/** A trained (1 epoch) checkpoint, exported in-process. */
let dir: string;
/** A copy of the same checkpoint taken before the export (for the CLI and the tfjs fallback). */
let plainDir: string;
let model: EquiVAE;
let onnxEngine: Engine;

before(async () => {
  await initBackend("wasm");
  root = tempDir("equivae-onnx-");
  dir = join(root, "ck");
  const r = await train(data, {
    out: dir,
    epochs: 1,
    dv: 16,
    dz: 16,
    nMax: 7,
    batchSize: 32,
    batchDoubleEvery: 0,
    maxBatchSize: 32,
    contextShare: 4,
    learningRate: 1e-3,
    seed: 3,
    resume: false,
    command: "test",
    backend: "wasm",
    // A checkpoint without graphs (as made before training exported them), exported below.
    quiet: true,
    log: () => {},
  });
  r.model.dispose();
  plainDir = join(root, "plain");
  cpSync(dir, plainDir, { recursive: true });
  await exportOnnx(dir);
  model = (await loadCheckpoint(dir)).model;
  onnxEngine = await loadEngine(dir, { engine: "onnx", threads: 1 });
});

after(async () => {
  await onnxEngine?.dispose();
  model?.dispose();
});

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length, "output sizes differ");
  let d = 0;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i] - b[i]);
    if (!(e <= d)) d = e; // NaN propagates
  }
  return d;
}

function normal(rng: Rng, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => {
    const u = Math.max(rng.next(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
  });
}

function tfRun(fn: () => tf.Tensor): Float32Array {
  const t = tf.tidy(fn);
  const d = t.dataSync() as Float32Array;
  t.dispose();
  return d;
}

/** Set sizes 1..7 for `b` sets. */
const setSizes = (b: number) => range(0, b).map((i) => ((i * 3) % 7) + 1);

/**
 * Compares every graph (through the ONNX engine) with the TF.js model on the given images
 * (n of them, plus sets drawn from `imagesFor`). Returns the max abs difference per graph.
 */
async function parity(
  m: EquiVAE,
  engine: Engine,
  rng: Rng,
  images: (count: number) => Float32Array,
  n: number,
): Promise<Record<string, number>> {
  const c = m.config;
  const shape = (k: number): [number, number, number, number] => [k, c.height, c.width, c.channels];
  const x = images(n);
  const out: Record<string, number> = {};

  const vRef = tfRun(() => m.invariant(tf.tensor4d(x, shape(n))));
  out.invariant = maxAbsDiff(await engine.embedInvariant(x, n), vRef);

  const sizes = setSizes(n);
  const total = sizes.reduce((a, b) => a + b, 0);
  const xs = images(total);
  const avg = new Float32Array(n * total);
  let off = 0;
  sizes.forEach((s, i) => {
    avg.fill(1 / s, i * total + off, i * total + off + s);
    off += s;
  });
  const setRef = tfRun(() => m.setInvariant(tf.tensor4d(xs, shape(total)), tf.tensor2d(avg, [n, total])));
  out.invariant_set = maxAbsDiff(await engine.embedSet(xs, sizes), setRef);

  // q(z|x,v) with the images' own v and with random v.
  let eq = 0;
  for (const v of [vRef, uniform(rng, n * c.dv, -2, 2)]) {
    const ref = tf.tidy(() => {
      const r = m.encode(tf.tensor4d(x, shape(n)), tf.tensor2d(v, [n, c.dv]));
      return [r.mu.dataSync(), r.logvar.dataSync()] as Float32Array[];
    });
    const got = await engine.encodeEquivariant(x, n, v);
    eq = Math.max(eq, maxAbsDiff(got.mu, ref[0]), maxAbsDiff(got.logvar, ref[1]));
  }
  out.equivariant = eq;

  const v = Float32Array.from(vRef);
  const z = normal(rng, n * c.dz);
  const decRef = tfRun(() =>
    m.likelihood.mean(m.decode(tf.tensor2d(v, [n, c.dv]), tf.tensor2d(z, [n, c.dz]))),
  );
  out.decoder = maxAbsDiff(await engine.decode(v, z, n), decRef);
  if (c.classifier) {
    const probsRef = tfRun(() => m.classifierProbs(tf.tensor4d(x, shape(n))));
    out.classifier = maxAbsDiff(await engine.posteriorProbs(x, n), probsRef);
  }
  return out;
}

function assertParity(d: Record<string, number>, what: string, classifier = false): void {
  assert.deepEqual(
    Object.keys(d).sort(),
    ["decoder", "equivariant", "invariant", "invariant_set", ...(classifier ? ["classifier"] : [])].sort(),
  );
  for (const [g, e] of Object.entries(d)) assert.ok(e <= TOL, `${what}: ${g} differs by ${e}`);
}

test("export writes four graphs and records their sha256, sizes and signatures in the manifest", async () => {
  const m = (await readManifest(dir)) as ExportManifest; // verifies every sha256
  assert.ok(m.onnx);
  assert.equal(m.onnx.opset, 13);
  assert.equal(m.onnx.weightsSha256, m.files["weights.bin"].sha256);
  for (const f of GRAPH_FILES) {
    const bytes = readFileSync(join(dir, f));
    assert.equal(m.files[f].bytes, bytes.byteLength, f);
    assert.equal(m.files[f].sha256, createHash("sha256").update(bytes).digest("hex"), f);
  }
  const sig = (g: string) => {
    const info = m.onnx!.graphs[g];
    return [info.file, info.inputs.map((t) => [t.name, t.shape]), info.outputs.map((t) => [t.name, t.shape])];
  };
  assert.deepEqual(sig("invariant"), ["invariant.onnx", [["x", ["N", 28, 28, 1]]], [["v", ["N", 16]]]]);
  assert.deepEqual(sig("invariant_set"), [
    "invariant_set.onnx",
    [
      ["x", ["B", "S", 28, 28, 1]],
      ["mask", ["B", "S"]],
    ],
    [["v", ["B", 16]]],
  ]);
  assert.deepEqual(sig("equivariant"), [
    "equivariant.onnx",
    [
      ["x", ["N", 28, 28, 1]],
      ["v", ["N", 16]],
    ],
    [
      ["mu", ["N", 16]],
      ["logvar", ["N", 16]],
    ],
  ]);
  assert.deepEqual(sig("decoder"), [
    "decoder.onnx",
    [
      ["v", ["N", 16]],
      ["z", ["N", 16]],
    ],
    [["x_mean", ["N", 28, 28, 1]]],
  ]);
  // The TF.js files are untouched.
  const plain = await readManifest(plainDir);
  assert.equal(m.files["weights.bin"].sha256, plain.files["weights.bin"].sha256);
});

test("ONNX Runtime matches TF.js within 1e-4 for every graph on random and MNIST inputs, batch 1, 7 and 256", async () => {
  const rng = new Rng(11);
  const c = model.config;
  const px = c.height * c.width * c.channels;
  const mnist = (count: number) =>
    batchPixels(
      data.train,
      range(0, count).map((i) => (i * 37) % data.train.n),
    );
  const results: string[] = [];
  for (const n of BATCHES) {
    for (const [name, images] of [
      ["random", (k: number) => uniform(rng, k * px)],
      ["mnist", mnist],
    ] as const) {
      const d = await parity(model, onnxEngine, rng, images, n);
      results.push(
        `${name} n=${n}: ${Object.entries(d)
          .map(([g, e]) => `${g} ${e.toExponential(1)}`)
          .join(", ")}`,
      );
      assertParity(d, `${name} n=${n}`);
    }
  }
  console.log(`max |ONNX - TF.js|:\n  ${results.join("\n  ")}`);
});

test("invariant_set.onnx ignores the images in masked slots", async () => {
  const session = await ort.InferenceSession.create(join(dir, "invariant_set.onnx"), {
    intraOpNumThreads: 1,
  });
  try {
    const rng = new Rng(5);
    const c = model.config;
    const px = c.height * c.width * c.channels;
    const [B, S] = [3, 4];
    const sizes = [4, 1, 2];
    const x = uniform(rng, B * S * px); // padded slots hold random images, not zeros
    const mask = Float32Array.from({ length: B * S }, (_, k) => (k % S < sizes[Math.floor(k / S)] ? 1 : 0));
    const r = await session.run({
      x: new ort.Tensor("float32", x, [B, S, c.height, c.width, c.channels]),
      mask: new ort.Tensor("float32", mask, [B, S]),
    });
    const packed = new Float32Array(7 * px);
    let o = 0;
    sizes.forEach((s, b) => {
      packed.set(x.subarray(b * S * px, (b * S + s) * px), o * px);
      o += s;
    });
    assert.ok(maxAbsDiff(r.v.data as Float32Array, await onnxEngine.embedSet(packed, sizes)) <= 1e-6);
  } finally {
    await session.release();
  }
});

test("a 32x32x3 model exports and matches TF.js within 1e-4 on random inputs", async () => {
  const cfg = defaultConfig({ height: 32, width: 32, channels: 3, numClasses: 10 });
  const m = new EquiVAE(cfg, 7);
  // Non-zero biases, so that bias handling is exercised too.
  const rng = new Rng(8);
  perturbBiases(m, rng);
  const d32 = join(root, "ck32");
  const names = range(0, 10).map(String);
  await saveRandomCheckpoint(d32, m, rng, names);
  await exportOnnx(d32);
  const engine = await loadEngine(d32, { engine: "onnx", threads: 1 });
  try {
    const results: string[] = [];
    for (const n of BATCHES) {
      const d = await parity(m, engine, rng, (k) => uniform(rng, k * 32 * 32 * 3), n);
      results.push(
        `32x32x3 n=${n}: ${Object.entries(d)
          .map(([g, e]) => `${g} ${e.toExponential(1)}`)
          .join(", ")}`,
      );
      assertParity(d, `32x32x3 n=${n}`);
    }
    console.log(`max |ONNX - TF.js|:\n  ${results.join("\n  ")}`);
  } finally {
    await engine.dispose();
    m.dispose();
  }
});

test("the exported files load in a fresh process and give the same numbers", async () => {
  const rng = new Rng(21);
  const n = 7;
  const x = uniform(rng, n * 784);
  const z = normal(rng, n * 16);
  const input = join(root, "fresh-input.bin");
  writeFileSync(input, Buffer.concat([Buffer.from(x.buffer), Buffer.from(z.buffer)]));
  const script = `
    const { loadEngine } = await import(${JSON.stringify(pathToFileURL(join(ROOT, "dist", "src", "inference", "index.js")).href)});
    const { readFileSync } = await import("node:fs");
    const buf = readFileSync(process.env.EQ_INPUT);
    const all = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
    const x = all.slice(0, ${n * 784}), z = all.slice(${n * 784});
    const e = await loadEngine(process.env.EQ_DIR, { threads: 1 });
    const v = await e.embedInvariant(x, ${n});
    const out = { kind: e.kind, v: Array.from(v), x_mean: Array.from(await e.decode(v, z, ${n})) };
    await e.dispose();
    process.stdout.write(JSON.stringify(out));`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
    cwd: ROOT,
    encoding: "utf8",
    env: { ...process.env, EQ_DIR: dir, EQ_INPUT: input },
    timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const got = JSON.parse(r.stdout) as { kind: string; v: number[]; x_mean: number[] };
  assert.equal(got.kind, "onnx");
  const v = await onnxEngine.embedInvariant(x, n);
  assert.deepEqual(got.v, Array.from(v));
  assert.deepEqual(got.x_mean, Array.from(await onnxEngine.decode(v, z, n)));
});

/** Rewrites one manifest entry to match the file as it now is (so only ONNX Runtime can object). */
function rehash(d: string, file: string): void {
  const mp = join(d, "manifest.json");
  const m = JSON.parse(readFileSync(mp, "utf8"));
  const bytes = readFileSync(join(d, file));
  m.files[file] = { sha256: createHash("sha256").update(bytes).digest("hex"), bytes: bytes.byteLength };
  writeFileSync(mp, JSON.stringify(m, null, 2));
}

async function oneLineRejection(d: string, pattern: RegExp): Promise<void> {
  await assert.rejects(loadEngine(d, { engine: "onnx" }), (e: Error) => {
    assert.equal(e.name, "InputError");
    assert.doesNotMatch(e.message, /\n/);
    assert.match(e.message, pattern);
    return true;
  });
}

test("a truncated or malformed .onnx, or a sha256 mismatch, is one clear error naming the file", async () => {
  const copy = (name: string) => {
    const d = join(root, name);
    cpSync(dir, d, { recursive: true });
    return d;
  };
  const truncated = copy("truncated");
  const full = readFileSync(join(truncated, "equivariant.onnx"));
  writeFileSync(join(truncated, "equivariant.onnx"), full.subarray(0, Math.floor(full.byteLength / 3)));
  // Not yet rehashed: the manifest catches it.
  await oneLineRejection(truncated, /checkpoint file corrupt: .*equivariant\.onnx does not match its sha256/);
  rehash(truncated, "equivariant.onnx");
  await oneLineRejection(truncated, /equivariant\.onnx: ONNX Runtime cannot load this model/);

  const malformed = copy("malformed");
  const rng = new Rng(9);
  writeFileSync(
    join(malformed, "decoder.onnx"),
    Uint8Array.from({ length: 4096 }, () => rng.int(0, 255)),
  );
  rehash(malformed, "decoder.onnx");
  await oneLineRejection(malformed, /decoder\.onnx: ONNX Runtime cannot load this model/);
  // Exporting again repairs it; a damaged weights file is refused by the export.
  await exportOnnx(malformed);
  await (await loadEngine(malformed, { engine: "onnx", threads: 1 })).dispose();
  const wb = readFileSync(join(malformed, "weights.bin"));
  wb[10] ^= 1;
  writeFileSync(join(malformed, "weights.bin"), wb);
  await assert.rejects(exportOnnx(malformed), /checkpoint file corrupt: .*weights\.bin/);

  const mismatch = copy("mismatch");
  const mp = join(mismatch, "manifest.json");
  const m = JSON.parse(readFileSync(mp, "utf8"));
  m.files["invariant.onnx"].sha256 = "0".repeat(64);
  writeFileSync(mp, JSON.stringify(m, null, 2));
  await oneLineRejection(mismatch, /checkpoint file corrupt: .*invariant\.onnx does not match its sha256/);

  // ONNX graphs from other weights are refused rather than silently used.
  const stale = copy("stale");
  const sm = JSON.parse(readFileSync(join(stale, "manifest.json"), "utf8"));
  sm.onnx.weightsSha256 = "f".repeat(64);
  writeFileSync(join(stale, "manifest.json"), JSON.stringify(sm, null, 2));
  await oneLineRejection(stale, /exported from other weights.*equivae export/);

  // No ONNX graphs at all: the onnx engine says how to make them.
  await oneLineRejection(plainDir, /has no ONNX graphs \(run 'equivae export/);
});

test("the CLI export command writes the same graphs and prints what it wrote", async () => {
  const d = join(root, "cli");
  cpSync(plainDir, d, { recursive: true });
  const r = runCli(["export", d], {}, 120_000);
  assert.equal(r.code, 0, r.stderr);
  for (const f of GRAPH_FILES) {
    assert.match(r.stdout, new RegExp(`wrote .*${f.replace(".", "\\.")} \\(\\d+\\.\\d KiB\\)`));
    // Deterministic: byte-identical to the in-process export of the same weights.
    assert.ok(readFileSync(join(d, f)).equals(readFileSync(join(dir, f))), f);
  }
  assert.match(r.stdout, /updated .*manifest\.json/);
  assert.match(r.stdout, /checked: every graph loads/);
  const m = (await readManifest(d)) as ExportManifest;
  assert.deepEqual(Object.keys(m.onnx!.graphs), ["invariant", "invariant_set", "equivariant", "decoder"]);
  // Exporting twice replaces the entries rather than duplicating them.
  assert.equal(runCli(["export", d], {}, 120_000).code, 0);
  assert.deepEqual(Object.keys((await readManifest(d)).files).sort(), Object.keys(m.files).sort());

  const bad = runCli(["export", join(root, "missing")]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr.trim(), /^error: checkpoint directory not found: .*missing$/);
  assert.equal(runCli(["export", "--help"]).code, 0);
});

test("both engines classify alike; auto picks onnx when exported; the tfjs engine leaks no tensors", async () => {
  const auto = await loadEngine(dir);
  assert.equal(auto.kind, "onnx");
  await auto.dispose();
  const tfe = await loadEngine(plainDir); // no ONNX files: falls back to TF.js
  assert.equal(tfe.kind, "tfjs");
  try {
    assert.deepEqual(tfe.classNames, onnxEngine.classNames);
    assert.deepEqual(tfe.centroids, onnxEngine.centroids);
    const n = data.validation.n;
    const x = batchPixels(data.validation, range(0, n));
    const before = tf.memory().numTensors;
    const a = await onnxEngine.classify(x, n, 3);
    const b = await tfe.classify(x, n, 3);
    assert.equal(a.length, n);
    let maxP = 0;
    for (let i = 0; i < n; i++) {
      assert.equal(a[i].length, 3);
      assert.deepEqual(
        a[i].map((s) => s.label),
        b[i].map((s) => s.label),
      );
      a[i].forEach((s, j) => (maxP = Math.max(maxP, Math.abs(s.p - b[i][j].p))));
      assert.ok(a[i][0].p >= a[i][1].p && a[i][1].p >= a[i][2].p);
      assert.equal(a[i][0].name, data.classNames[a[i][0].label]);
    }
    assert.ok(maxP <= 1e-4, `p differs by ${maxP}`);
    // p sums to 1 over all classes.
    const all = await onnxEngine.classify(x.subarray(0, 784), 1, 100);
    assert.equal(all[0].length, 10);
    assert.ok(Math.abs(all[0].reduce((s, c) => s + c.p, 0) - 1) < 1e-9);
    // The rest of the tfjs engine's surface, for tensor leaks.
    const v = await tfe.embedInvariant(x.subarray(0, 7 * 784), 7);
    await tfe.embedSet(x.subarray(0, 10 * 784), [3, 7]);
    await tfe.encodeEquivariant(x.subarray(0, 7 * 784), 7, v);
    await tfe.decode(v, new Float32Array(7 * 16), 7);
    assert.equal(tf.memory().numTensors, before);
    // Input checks are clear errors.
    await assert.rejects(tfe.embedInvariant(x.subarray(0, 100), 1), /expected 1 images of 28x28x1/);
    await assert.rejects(onnxEngine.embedSet(x.subarray(0, 784), [1, 0]), /every set needs >= 1 image/);
  } finally {
    await tfe.dispose();
  }
  assert.ok(existsSync(join(plainDir, "weights.bin")));
});

test("a semi-supervised checkpoint carries classifier.onnx: q(y|x) agrees with TF.js to 1e-4 at batch 1, 7, 256", async () => {
  const semiDir = join(tempDir("equivae-onnx-semi-"), "ck");
  const small = loadIdxDataset("mnist", { dataDir: MNIST_DIR, trainSize: 160, valSize: 50 });
  const r = await train(small, {
    out: semiDir,
    epochs: 1,
    dv: 8,
    dz: 8,
    nMax: 3,
    batchSize: 32,
    batchDoubleEvery: 0,
    maxBatchSize: 32,
    contextShare: 4,
    learningRate: 1e-3,
    seed: 5,
    resume: false,
    command: "test",
    backend: "wasm",
    labels: 40,
    quiet: true,
    log: () => {},
    deriveFiles: (snapshot) => onnxFiles(snapshot),
  });
  r.model.dispose();
  const m = (await readManifest(semiDir)) as ExportManifest;
  assert.equal(m.model.classifier, true);
  assert.deepEqual(m.onnx?.graphs.classifier.outputs, [
    { name: "probs", shape: ["N", 10], dtype: "float32" },
  ]);
  assert.ok(m.files["classifier.onnx"]?.sha256);
  const semiModel = (await loadCheckpoint(semiDir)).model;
  const onnx = await loadEngine(semiDir, { engine: "onnx", threads: 1 });
  const tfjs = await loadEngine(semiDir, { engine: "tfjs" });
  try {
    assert.equal(onnx.hasPosterior, true);
    assert.equal(onnxEngine.hasPosterior, false);
    await assert.rejects(onnxEngine.classifyPosterior(new Float32Array(784), 1), /no q\(y\|x\) classifier/);
    const rng = new Rng(9);
    const results: string[] = [];
    for (const n of BATCHES) {
      const d = await parity(
        semiModel,
        onnx,
        rng,
        (k) =>
          batchPixels(
            data.train,
            range(0, k).map((i) => i % data.train.n),
          ),
        n,
      );
      assertParity(d, `semi n=${n}`, true);
      results.push(
        `semi n=${n}: classifier ${d.classifier.toExponential(1)}, invariant ${d.invariant.toExponential(1)}`,
      );
      const x = batchPixels(data.validation, range(0, Math.min(n, data.validation.n)));
      const k = Math.min(n, data.validation.n);
      const a = await onnx.classifyPosterior(x, k, 3);
      const b = await tfjs.classifyPosterior(x, k, 3);
      assert.deepEqual(
        a.map((row) => row[0].label),
        b.map((row) => row[0].label),
      );
      for (const row of a) {
        assert.equal(row.length, 3);
        assert.ok(row[0].p >= row[1].p && row[1].p >= row[2].p);
      }
      const probs = await onnx.posteriorProbs(x, k);
      for (let i = 0; i < k; i++) {
        const sum = probs.subarray(i * 10, (i + 1) * 10).reduce((s, p) => s + p, 0);
        assert.ok(Math.abs(sum - 1) < 1e-5);
      }
    }
    console.log(`max |ONNX - TF.js| for q(y|x):\n  ${results.join("\n  ")}`);

    // Over HTTP: /v1/models lists posterior, and /classify method=posterior returns q(y|x)'s labels.
    const app = createApp(onnx, { log: () => {} });
    assert.equal(await app.ready, true);
    const info = (await request(app).get("/v1/models").expect(200)).body.models[0];
    assert.deepEqual(info.classify_methods, ["centroid", "posterior"]);
    assert.equal(info.likelihood, "bernoulli");
    const k = 4;
    const x = batchPixels(data.validation, range(0, k));
    const pixels = Array.from({ length: k }, (_, i) => Array.from(x.subarray(i * 784, (i + 1) * 784)));
    const res = await request(app).post("/classify").send({ pixels, method: "posterior" }).expect(200);
    assert.equal(res.body.method, "posterior");
    const expected = await onnx.classifyPosterior(x, k, 1);
    assert.deepEqual(
      res.body.predictions.map((p: { label: number }) => p.label),
      expected.map((row) => row[0].label),
    );
  } finally {
    await onnx.dispose();
    await tfjs.dispose();
    semiModel.dispose();
  }
  // eval's defaults for a semi-supervised checkpoint: the benchmark and the classifier on v train on
  // the labelled rows only, for 200 epochs (5 and 20 on a few dozen rows would be a handful of steps).
  const evalOut = join(tempDir(), "eval.json");
  const ev = runCli([
    "eval",
    semiDir,
    "--split",
    "validation",
    "--limit",
    "20",
    "--backend",
    "wasm",
    "--out",
    evalOut,
  ]);
  assert.equal(ev.code, 0, ev.stderr);
  const details = JSON.parse(readFileSync(evalOut, "utf8")).details;
  assert.equal(details.benchmarkEpochs, 200);
  assert.equal(details.vClassifierEpochs, 200);
  assert.equal(details.labelledRows, 40);
});
