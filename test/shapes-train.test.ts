/**
 * Issue #8 end to end: a generated colour image-folder dataset (circles, squares, triangles;
 * `equivae make-shapes`), trained through the CLI on the wasm backend with the defaults for colour
 * images (Gaussian likelihood, learned scale, per-pixel standardisation), evaluated on its test
 * split, then served: /classify answers with the folder's class names and /generate draws RGB PNGs.
 *
 * Measured when this test was written (wasm, 2 cores shared with two other training runs; the run
 * is seeded, so the numbers repeat on this backend): 12 epochs over 810 training images took 112 s
 * (~95 img/s); validation nearest-centroid error per epoch 42, 40, 38, 38, 61, 50, 28, 21, 21, 20,
 * 17, 11%; TEST error 13.33% on the 300 test images (86.67% accuracy; chance 66.7% error), and
 * /classify got 25 of the first 30 test images right. The threshold, 30%, leaves room for numerical
 * differences between machines and backends (the learning curve is not monotone: epoch 5 was 61%).
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import request from "supertest";
import { PNG } from "pngjs";
import { initBackend } from "../src/backend/index.js";
import { loadEngine, type Engine } from "../src/inference/index.js";
import { createApp, type ServeApp } from "../src/serve/app.js";
import { readManifest } from "../src/checkpoint/index.js";
import { runCli } from "./helpers/cli.js";
import { tempDir } from "./helpers/paths.js";

const PER_CLASS = 300;
const TEST_PER_CLASS = 100;
const EPOCHS = 12;
// Measured 13.33% (see above); chance is 66.7%.
const TEST_ERROR_THRESHOLD = 0.3;

let root: string;
let data: string;
let out: string;
let engine: Engine | undefined;
let app: ServeApp;

before(async () => {
  await initBackend("wasm");
  root = tempDir("equivae-shapes-");
  data = join(root, "shapes");
  out = join(root, "run");
});

after(async () => {
  await engine?.dispose();
  rmSync(root, { recursive: true, force: true });
});

test(
  "make-shapes + train --dataset folder (Gaussian, standardised) + eval: nearest-centroid test error bound",
  { timeout: 900_000 },
  () => {
    const g = runCli([
      "make-shapes",
      "--out",
      data,
      "--per-class",
      String(PER_CLASS),
      "--test-per-class",
      String(TEST_PER_CLASS),
      "--seed",
      "1",
    ]);
    assert.equal(g.code, 0, g.stderr);
    assert.match(g.stdout, /wrote 900 training and 300 test images of circle, square, triangle/);

    const t0 = Date.now();
    const r = runCli(
      [
        "train",
        "--dataset",
        "folder",
        "--data-dir",
        data,
        "--epochs",
        String(EPOCHS),
        // Shared context pools (the paper's independent sets are the default): ~2x faster on wasm,
        // which this test's time budget needs; the measured numbers below are for this setting.
        "--context-share",
        "4",
        "--backend",
        "wasm",
      ].concat(["--out", out, "--quiet", "--no-keep-best"]),
      {},
      850_000,
    );
    const secs = (Date.now() - t0) / 1000;
    assert.equal(r.code, 0, r.stderr);
    console.log(r.stdout.trim());
    console.log(`training took ${secs.toFixed(0)} s`);
    assert.match(r.stdout, /518,630 parameters/);
    assert.match(r.stdout, /likelihood=gaussian \(scale learned\), inputs standardised per channel/);
    assert.match(r.stdout, /data: folder train 810, validation 90/);

    const e = runCli(
      ["eval", out, "--split", "test", "--v-epochs", "0", "--benchmark-epochs", "0", "--backend", "wasm"],
      {},
      300_000,
    );
    assert.equal(e.code, 0, e.stderr);
    const ev = JSON.parse(readFileSync(join(out, "eval.json"), "utf8"));
    assert.equal(ev.n, 3 * TEST_PER_CLASS);
    console.log(`shapes test nearest-centroid error: ${(ev.centroidError * 100).toFixed(2)}%`);
    assert.ok(ev.centroidError < TEST_ERROR_THRESHOLD, `test error ${ev.centroidError}`);
  },
);

test("the checkpoint records the folder, its class names and the standardisation", async () => {
  const m = await readManifest(out);
  assert.equal(m.dataset.name, "folder");
  assert.deepEqual(m.dataset.classNames, ["circle", "square", "triangle"]);
  assert.deepEqual(m.dataset.loader, {
    imageSize: "32x32",
    channels: 3,
    validationFraction: 0.1,
    splitSeed: 1,
  });
  assert.match(m.dataset.preprocessing, /standardisation\.json/);
  assert.equal(m.model.likelihood, "gaussian");
  assert.equal(m.model.standardise, true);
  assert.ok(m.files["standardisation.json"]);
  const st = JSON.parse(readFileSync(join(out, "standardisation.json"), "utf8"));
  assert.deepEqual(st.shape, [32, 32, 3]);
  assert.equal(st.mode, "channel");
  assert.equal(st.count, 810);
});

test("served: /classify names a folder class (mostly the right one), /generate draws 32x32 RGB PNGs", async () => {
  engine = await loadEngine(out, { engine: "onnx", threads: 1 });
  app = createApp(engine, { log: () => {} });
  assert.equal(await app.ready, true);
  const models = (await request(app).get("/v1/models").expect(200)).body.models[0];
  assert.deepEqual(models.classes, ["circle", "square", "triangle"]);
  assert.deepEqual(models.input, { height: 32, width: 32, channels: 3 });
  assert.equal(models.likelihood, "gaussian");
  assert.equal(models.standardised, true);

  let correct = 0;
  const names = ["circle", "square", "triangle"];
  for (const name of names) {
    let req = request(app).post("/classify");
    for (let i = 0; i < 10; i++) {
      const f = join(data, "test", name, `${name}-${String(i).padStart(4, "0")}.png`);
      req = req.attach("image", readFileSync(f), `${name}-${i}.png`);
    }
    const r = await req.expect(200);
    for (const p of r.body.predictions as Array<{ name: string }>) {
      assert.ok(names.includes(p.name), p.name);
      correct += Number(p.name === name);
    }
  }
  console.log(`/classify: ${correct}/30 test images right`);
  assert.ok(correct >= 30 * (1 - TEST_ERROR_THRESHOLD) - 3, `${correct}/30`);

  for (const name of names) {
    const g = await request(app).post("/generate").set("Accept", "image/png").send({ class: name, seed: 2 });
    assert.equal(g.status, 200, g.text);
    assert.match(g.headers["content-type"], /^image\/png/);
    const png = PNG.sync.read(g.body as Buffer);
    assert.equal(png.width, 32);
    assert.equal(png.height, 32);
    assert.equal((png as unknown as { colorType: number }).colorType, 2, "an RGB PNG");
    // Colour, not grey: some pixel has R, G, B not all equal.
    let colour = false;
    for (let i = 0; i < png.width * png.height && !colour; i++) {
      const [r, gg, b] = png.data.subarray(i * 4, i * 4 + 3);
      colour = r !== gg || gg !== b;
    }
    assert.ok(colour, `${name}: a colour image`);
  }
  // A grid of 4 samples (2 x 2) for one class.
  const grid = await request(app)
    .post("/generate")
    .set("Accept", "image/png")
    .send({ class: "triangle", count: 4, seed: 3 });
  assert.equal(grid.status, 200, grid.text);
  const gp = PNG.sync.read(grid.body as Buffer);
  assert.ok(gp.width >= 64 && gp.height >= 64);
});
