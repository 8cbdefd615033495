/**
 * Colour models (issue #8): the Gaussian likelihood, per-pixel standardisation inside the model,
 * checkpoints that carry it, ONNX graphs that bake it in, and the server applying it by construction.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import request from "supertest";
import { PNG } from "pngjs";
import { initBackend } from "../src/backend/index.js";
import { range, type ImageSet } from "../src/data/dataset.js";
import { exportOnnx } from "../src/export/onnx.js";
import { loadEngine } from "../src/inference/index.js";
import { defaultConfig, type ModelConfig } from "../src/model/config.js";
import { EquiVAE } from "../src/model/equivae.js";
import { readManifest, type StandardisationFile } from "../src/checkpoint/index.js";
import { computeStandardisation, STD_FLOOR_FRACTION, STD_FLOOR_MIN } from "../src/model/standardisation.js";
import { createApp } from "../src/serve/app.js";
import { encodePng } from "../src/imaging/index.js";
import { loadCheckpoint } from "../src/train/checkpoint.js";
import { resolveLikelihood } from "../src/train/likelihood-options.js";
import { Rng } from "../src/util/rng.js";
import { tempDir } from "./helpers/paths.js";
import { runCli } from "./helpers/cli.js";
import { readNpy } from "./helpers/embed.js";
import { perturbBiases, saveRandomCheckpoint, uniform } from "./helpers/random-checkpoint.js";

const TOL = 1e-4;

before(async () => {
  await initBackend("wasm");
});

let root: string;
before(() => {
  root = tempDir("equivae-gauss-");
});
after(() => {
  rmSync(root, { recursive: true, force: true });
});

/** Pixels that survive a PNG round trip exactly: k / 255. */
function bytesPixels(rng: Rng, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => rng.int(0, 255) / 255);
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length, "sizes differ");
  let d = 0;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i] - b[i]);
    if (!(e <= d)) d = e;
  }
  return d;
}

function tfRun(fn: () => tf.Tensor): Float32Array {
  const t = tf.tidy(fn);
  const d = t.dataSync() as Float32Array;
  t.dispose();
  return d;
}

/** A random uint8 image set (for statistics). */
function randomSet(rng: Rng, n: number, h: number, w: number, c: number): ImageSet {
  const pixels = Uint8Array.from({ length: n * h * w * c }, () => rng.int(0, 255));
  return { pixels, labels: new Int32Array(n), n, height: h, width: w, channels: c };
}

/** Random standardisation statistics (mean in [0.2, 0.8], std in [0.05, 0.4]). */
function randomStats(rng: Rng, cfg: ModelConfig): StandardisationFile {
  const d = cfg.height * cfg.width * cfg.channels;
  return {
    shape: [cfg.height, cfg.width, cfg.channels],
    count: 1,
    stdFloor: 0.05,
    mean: Array.from(uniform(rng, d, 0.2, 0.8)),
    std: Array.from(uniform(rng, d, 0.05, 0.4)),
  };
}

const colourCfg = (extra: Partial<Parameters<typeof defaultConfig>[0]> = {}) =>
  defaultConfig({
    height: 32,
    width: 32,
    channels: 3,
    numClasses: 3,
    likelihood: "gaussian",
    standardise: true,
    ...extra,
  });

test("defaults: Gaussian + standardisation for colour (per pixel on SVHN), Bernoulli without for grey; the 32x32x3 size", () => {
  assert.deepEqual(resolveLikelihood(3, "svhn", {}), {
    likelihood: "gaussian",
    gaussianScale: "learned",
    standardise: "pixel",
  });
  assert.deepEqual(resolveLikelihood(3, "folder", {}), {
    likelihood: "gaussian",
    gaussianScale: "learned",
    standardise: "channel",
  });
  assert.deepEqual(resolveLikelihood(1, "folder", {}), { likelihood: "bernoulli", standardise: "off" });
  assert.deepEqual(resolveLikelihood(1, "mnist", {}), { likelihood: "bernoulli", standardise: "off" });
  assert.deepEqual(resolveLikelihood(3, "svhn", { likelihood: "bernoulli" }), {
    likelihood: "bernoulli",
    standardise: "off",
  });
  assert.deepEqual(resolveLikelihood(3, "svhn", { gaussianScale: 0.5, standardise: "off" }), {
    likelihood: "gaussian",
    gaussianScale: 0.5,
    standardise: "off",
  });
  assert.throws(() => resolveLikelihood(1, "mnist", { gaussianScale: 1 }), /only to --likelihood gaussian/);
  // A Bernoulli config keeps the old manifest shape (no new keys).
  assert.deepEqual(
    Object.keys(defaultConfig({ height: 28, width: 28, channels: 1, numClasses: 10 })).sort(),
    [
      "channels",
      "dv",
      "dz",
      "filters",
      "height",
      "hidden",
      "kernel",
      "likelihood",
      "numClasses",
      "strides",
      "width",
    ],
  );
  // The supervised 32x32x3 Gaussian model: 518,630 parameters, 3 of them the learned log sigma.
  const m = new EquiVAE(colourCfg());
  assert.equal(m.parameterCount, 518_630);
  assert.deepEqual(m.params.get("dec/log_sigma").shape, [3]);
  m.dispose();
  const fixed = new EquiVAE(colourCfg({ gaussianScale: 0.5 }));
  assert.equal(fixed.parameterCount, 518_627);
  fixed.dispose();
});

test("statistics: per pixel and channel over the training rows, std floored", () => {
  const rng = new Rng(1);
  const s = randomSet(rng, 50, 4, 5, 3);
  // Pixel 0 channel 0 constant: its std is floored.
  for (let i = 0; i < s.n; i++) s.pixels[i * 60] = 77;
  const st = computeStandardisation(s);
  assert.deepEqual(st.shape, [4, 5, 3]);
  assert.equal(st.count, 50);
  for (const k of [0, 1, 17, 59]) {
    let sum = 0;
    let sq = 0;
    for (let i = 0; i < s.n; i++) {
      const v = s.pixels[i * 60 + k] / 255;
      sum += v;
      sq += v * v;
    }
    const mean = sum / s.n;
    const std = Math.sqrt(sq / s.n - mean * mean);
    assert.ok(Math.abs(st.mean[k] - mean) < 1e-6, `mean ${k}`);
    if (k !== 0) assert.ok(Math.abs(st.std[k] - std) < 1e-6, `std ${k}`);
  }
  assert.ok(Math.abs(st.mean[0] - 77 / 255) < 1e-6);
  assert.equal(st.std[0], st.stdFloor);
  assert.ok(st.stdFloor >= STD_FLOOR_MIN);
  const meanStd = st.std.slice(1).reduce((a, b) => a + b, 0) / 59;
  assert.ok(Math.abs(st.stdFloor - Math.max(STD_FLOOR_MIN, STD_FLOOR_FRACTION * meanStd)) < 1e-3);
  assert.equal(st.mode, "pixel");

  // Per channel: one mean and std per channel, pooled over all positions, repeated at each.
  const ch = computeStandardisation(s, "channel");
  assert.equal(ch.mode, "channel");
  for (let c = 0; c < 3; c++) {
    let sum = 0;
    let sq = 0;
    for (let i = 0; i < s.n; i++)
      for (let p = 0; p < 20; p++) {
        const v = s.pixels[i * 60 + p * 3 + c] / 255;
        sum += v;
        sq += v * v;
      }
    const mean = sum / (s.n * 20);
    const std = Math.sqrt(sq / (s.n * 20) - mean * mean);
    for (let p = 0; p < 20; p++) {
      assert.ok(Math.abs(ch.mean[p * 3 + c] - mean) < 1e-6);
      assert.ok(Math.abs(ch.std[p * 3 + c] - std) < 1e-6);
    }
  }
});

test("Gaussian log-likelihood: the density of x under N(std*out+mean, (std*sigma)^2), and the mean is clipped", () => {
  const rng = new Rng(2);
  const cfg = colourCfg({ height: 8, width: 8 });
  const m = new EquiVAE(cfg, 3);
  const stats = randomStats(rng, cfg);
  m.setStandardisation(stats);
  const logSigma = [0.3, -0.5, 0.1];
  m.params.get("dec/log_sigma").assign(tf.tensor1d(logSigma));
  const n = 2;
  const d = 8 * 8 * 3;
  const x = uniform(rng, n * d);
  const out = uniform(rng, n * d, -3, 3);
  const lp = tfRun(() => m.likelihood.logProb(tf.tensor4d(x, [n, 8, 8, 3]), tf.tensor4d(out, [n, 8, 8, 3])));
  for (let i = 0; i < n; i++) {
    let ref = 0;
    for (let k = 0; k < d; k++) {
      // x ~ N(mu, s^2) in pixel units with mu = out*std + mean and s = sigma * std.
      const mu = out[i * d + k] * stats.std[k] + stats.mean[k];
      const s = Math.exp(logSigma[k % 3]) * stats.std[k];
      ref += -0.5 * ((x[i * d + k] - mu) / s) ** 2 - Math.log(s) - 0.5 * Math.log(2 * Math.PI);
    }
    assert.ok(Math.abs(lp[i] - ref) < 1e-3 * Math.abs(ref) + 1e-2, `logProb ${lp[i]} vs ${ref}`);
  }
  const mean = tfRun(() => m.likelihood.mean(tf.tensor4d(out, [n, 8, 8, 3])));
  for (let k = 0; k < n * d; k++) {
    const ref = Math.min(1, Math.max(0, out[k] * stats.std[k % d] + stats.mean[k % d]));
    assert.ok(Math.abs(mean[k] - ref) < 1e-5);
  }
  m.dispose();
});

test("standardisation happens inside every conv stack: equal to an unstandardised twin on (x - mean) / std", () => {
  const rng = new Rng(3);
  const cfg = colourCfg();
  const m = new EquiVAE(cfg, 5);
  const stats = randomStats(rng, cfg);
  m.setStandardisation(stats);
  const { standardise: _s, ...plainCfg } = cfg;
  const twin = new EquiVAE(plainCfg as ModelConfig, 5);
  const values: tf.NamedTensorMap = {};
  for (const [k, v] of m.params.vars) values[k] = v;
  twin.params.assign(values);
  const n = 4;
  const d = 32 * 32 * 3;
  const x = uniform(rng, n * d);
  const xs = Float32Array.from(x, (v, i) => (v - stats.mean[i % d]) / stats.std[i % d]);
  const shape: [number, number, number, number] = [n, 32, 32, 3];
  const v1 = tfRun(() => m.invariant(tf.tensor4d(x, shape)));
  const v2 = tfRun(() => twin.invariant(tf.tensor4d(xs, shape)));
  assert.ok(maxAbsDiff(v1, v2) < 1e-4, `v ${maxAbsDiff(v1, v2)}`);
  const mu1 = tfRun(() => m.encode(tf.tensor4d(x, shape), tf.tensor2d(v1, [n, 16])).mu);
  const mu2 = tfRun(() => twin.encode(tf.tensor4d(xs, shape), tf.tensor2d(v1, [n, 16])).mu);
  assert.ok(maxAbsDiff(mu1, mu2) < 1e-4, `mu ${maxAbsDiff(mu1, mu2)}`);
  // No tensors leak per call.
  const before = tf.memory().numTensors;
  tf.tidy(() => {
    m.likelihood.logProb(tf.tensor4d(x, shape), m.decode(tf.tensor2d(v1, [n, 16]), tf.zeros([n, 16])));
  });
  assert.equal(tf.memory().numTensors, before);
  m.dispose();
  twin.dispose();
});

test("checkpoint: standardisation.json is saved, listed with its sha256, loaded back; missing or damaged is one clear error", async () => {
  const rng = new Rng(4);
  const cfg = colourCfg();
  const m = new EquiVAE(cfg, 6);
  const stats = randomStats(rng, cfg);
  m.setStandardisation(stats);
  const dir = join(root, "ck-std");
  await saveRandomCheckpoint(dir, m, rng, ["a", "b", "c"]);
  const man = await readManifest(dir);
  assert.ok(man.files["standardisation.json"].sha256.length === 64);
  assert.equal(man.model.standardise, true);
  assert.equal(man.model.gaussianScale, "learned");
  const ck = await loadCheckpoint(dir);
  assert.deepEqual(ck.model.standardisation!.mean, Array.from(Float32Array.from(stats.mean)));
  assert.deepEqual(ck.model.standardisation!.std, Array.from(Float32Array.from(stats.std)));
  const x = uniform(rng, 2 * 32 * 32 * 3);
  const a = tfRun(() => m.invariant(tf.tensor4d(x, [2, 32, 32, 3])));
  const b = tfRun(() => ck.model.invariant(tf.tensor4d(x, [2, 32, 32, 3])));
  assert.deepEqual(a, b);
  ck.model.dispose();
  m.dispose();

  const p = join(dir, "standardisation.json");
  const text = readFileSync(p, "utf8");
  writeFileSync(p, text.replace(/"std":\[/, '"std":[0,'));
  await assert.rejects(loadCheckpoint(dir), /standardisation\.json does not match its sha256/);
  rmSync(p);
  await assert.rejects(loadCheckpoint(dir), /checkpoint file missing: .*standardisation\.json/);
  writeFileSync(p, text);
  await loadCheckpoint(dir).then((c) => c.model.dispose());
});

let gaussDir: string;
let ref: EquiVAE;

test("ONNX export of a 32x32x3 Gaussian model matches TF.js within 1e-4 (learned and fixed scale, with and without standardisation)", async () => {
  const rng = new Rng(5);
  const cases = [
    ["learned", true],
    [0.7, true],
    ["learned", false],
  ] as const;
  for (const [scale, standardise] of cases) {
    const cfg = colourCfg({ gaussianScale: scale, standardise });
    const m = new EquiVAE(cfg, 7);
    perturbBiases(m, rng);
    if (standardise) m.setStandardisation(randomStats(rng, cfg));
    const dir = join(root, `ck-onnx-${scale}-${standardise}`);
    await saveRandomCheckpoint(dir, m, rng, ["circle", "square", "triangle"]);
    await exportOnnx(dir);
    const man = (await readManifest(dir)) as Awaited<ReturnType<typeof readManifest>> & {
      onnx: { graphs: Record<string, { outputs: Array<{ name: string; shape: unknown[] }> }> };
    };
    assert.deepEqual(man.onnx.graphs.decoder.outputs[0], {
      name: "x_mean",
      shape: ["N", 32, 32, 3],
      dtype: "float32",
    });
    const engine = await loadEngine(dir, { engine: "onnx", threads: 1 });
    const tfjs = await loadEngine(dir, { engine: "tfjs" });
    try {
      const diffs: Record<string, number> = {};
      for (const n of [1, 7]) {
        const x = uniform(rng, n * 32 * 32 * 3);
        const shape: [number, number, number, number] = [n, 32, 32, 3];
        const v = tfRun(() => m.invariant(tf.tensor4d(x, shape)));
        diffs.invariant = Math.max(diffs.invariant ?? 0, maxAbsDiff(await engine.embedInvariant(x, n), v));
        diffs.invariant_tfjs = Math.max(
          diffs.invariant_tfjs ?? 0,
          maxAbsDiff(await tfjs.embedInvariant(x, n), v),
        );
        const sizes = range(0, n).map((i) => (i % 3) + 1);
        const xs = uniform(rng, sizes.reduce((a, b) => a + b, 0) * 32 * 32 * 3);
        diffs.invariant_set = Math.max(
          diffs.invariant_set ?? 0,
          maxAbsDiff(await engine.embedSet(xs, sizes), await tfjs.embedSet(xs, sizes)),
        );
        const e = await engine.encodeEquivariant(x, n, v);
        const mu = tfRun(() => m.encode(tf.tensor4d(x, shape), tf.tensor2d(v, [n, 16])).mu);
        diffs.equivariant = Math.max(diffs.equivariant ?? 0, maxAbsDiff(e.mu, mu));
        const z = uniform(rng, n * 16, -2, 2);
        const dec = tfRun(() =>
          m.likelihood.mean(m.decode(tf.tensor2d(v, [n, 16]), tf.tensor2d(z, [n, 16]))),
        );
        const got = await engine.decode(v, z, n);
        diffs.decoder = Math.max(diffs.decoder ?? 0, maxAbsDiff(got, dec));
        assert.ok(
          got.every((p) => p >= 0 && p <= 1),
          "decoder output in [0, 1]",
        );
        assert.ok(
          got.some((p) => p > 0 && p < 1),
          "not all clipped",
        );
      }
      console.log(
        `scale ${scale}, standardised ${standardise}: max |ONNX - TF.js| ${Object.entries(diffs)
          .map(([g, d]) => `${g} ${d.toExponential(1)}`)
          .join(", ")}`,
      );
      for (const [g, d] of Object.entries(diffs)) assert.ok(d <= TOL, `${g} differs by ${d}`);
    } finally {
      await engine.dispose();
      await tfjs.dispose();
    }
    if (scale === "learned" && standardise) {
      gaussDir = dir;
      ref = m;
    } else m.dispose();
  }
});

test("server and batch embedder: v of a colour PNG equals the TF.js model on manually standardised pixels; /generate is colour", async () => {
  assert.ok(gaussDir && ref, "needs the exported checkpoint of the previous test");
  const engine = await loadEngine(gaussDir, { engine: "onnx", threads: 1 });
  const app = createApp(engine, { log: () => {} });
  assert.equal(await app.ready, true);
  try {
    const rng = new Rng(9);
    const d = 32 * 32 * 3;
    const x = bytesPixels(rng, d);
    const std = ref.standardisation!;
    const xs = Float32Array.from(x, (v, i) => (v - std.mean[i]) / std.std[i]);
    // The unstandardised twin of the reference model, fed the manually standardised image.
    const { standardise: _s, ...plainCfg } = ref.config;
    const twin = new EquiVAE(plainCfg as ModelConfig, 1);
    const values: tf.NamedTensorMap = {};
    for (const [k, v] of ref.params.vars) values[k] = v;
    twin.params.assign(values);
    const vRef = tfRun(() => twin.invariant(tf.tensor4d(xs, [1, 32, 32, 3])));
    twin.dispose();
    const r = await request(app)
      .post("/embed/invariant")
      .attach("image", encodePng(x, 32, 32, 3), "c.png");
    assert.equal(r.status, 200, r.text);
    const v = Float32Array.from(r.body.v[0] as number[]);
    const diff = maxAbsDiff(v, vRef);
    console.log(
      `/embed/invariant vs TF.js on manually standardised input: max |diff| ${diff.toExponential(1)}`,
    );
    assert.ok(diff <= TOL, `differs by ${diff}`);

    // The batch embedder (the same engine) on the same PNG in a directory.
    const imgDir = join(root, "embed-in");
    mkdirSync(imgDir);
    writeFileSync(join(imgDir, "c.png"), encodePng(x, 32, 32, 3));
    const npy = join(root, "embed-out.npy");
    const e = runCli([
      "embed",
      "--input",
      imgDir,
      "--output",
      npy,
      "--what",
      "v",
      "--model",
      gaussDir,
      "--quiet",
    ]);
    assert.equal(e.code, 0, e.stderr);
    const got = readNpy(npy);
    assert.deepEqual(got.shape, [1, 16]);
    const eDiff = maxAbsDiff(got.data, vRef);
    console.log(
      `equivae embed vs TF.js on manually standardised input: max |diff| ${eDiff.toExponential(1)}`,
    );
    assert.ok(eDiff <= TOL, `embed differs by ${eDiff}`);

    const g = await request(app)
      .post("/generate")
      .set("Accept", "image/png")
      .send({ class: "square", seed: 1 });
    assert.equal(g.status, 200, g.text);
    assert.match(g.headers["content-type"], /image\/png/);
    const png = PNG.sync.read(g.body as Buffer);
    assert.equal(png.width, 32);
    assert.equal(png.height, 32);
    assert.equal((png as unknown as { colorType: number }).colorType, 2, "RGB PNG");
  } finally {
    await engine.dispose();
    ref.dispose();
  }
});

test("checkpoints without standardisation (the shipped MNIST model) have no standardisation file and load as before", async () => {
  const dir = join(process.cwd(), "models", "mnist");
  if (!existsSync(dir)) return;
  const man = await readManifest(dir);
  assert.equal(man.model.standardise, undefined);
  assert.equal(man.files["standardisation.json"], undefined);
  const ck = await loadCheckpoint(dir);
  assert.equal(ck.model.standardisation, undefined);
  ck.model.dispose();
});
