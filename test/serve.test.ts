import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import request from "supertest";
import { PNG } from "pngjs";
import jpeg from "jpeg-js";
import sharp from "sharp";
import { parse } from "yaml";
import { batchPixels, range } from "../src/data/dataset.js";
import { loadIdxDataset } from "../src/data/mnist.js";
import { loadEngine, type Engine } from "../src/inference/index.js";
import { createApp, type ServeApp } from "../src/serve/app.js";
import { DEFAULT_MODEL_DIR } from "../src/serve/config.js";
import { ERROR_TABLE } from "../src/serve/errors.js";
import { encodePng } from "../src/imaging/index.js";
import { MNIST_DIR, ROOT, tempDir } from "./helpers/paths.js";

let engine: Engine;
let app: ServeApp;
const data = loadIdxDataset("mnist", { dataDir: MNIST_DIR, trainSize: 10, valSize: 10, withTest: true });
const test100 = data.test!;
const X = batchPixels(test100, range(0, 100));
const PX = 28 * 28;
const img = (i: number) => X.subarray(i * PX, (i + 1) * PX);
const png = (i: number) => encodePng(img(i), 28, 28, 1);

before(async () => {
  engine = await loadEngine(DEFAULT_MODEL_DIR, { engine: "onnx", threads: 1 });
  app = createApp(engine, { log: () => {} });
  assert.equal(await app.ready, true);
});

after(async () => {
  await engine?.dispose();
});

/** A known-good request: the image of test[0] classified as its label. */
async function good(): Promise<void> {
  const r = await request(app).post("/classify").attach("image", png(0), "a.png");
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.predictions[0].label, test100.labels[0]);
  assert.equal(r.body.method, "centroid");
}

async function problem(r: request.Response, status: number, kind: keyof typeof ERROR_TABLE): Promise<void> {
  assert.equal(r.status, status, `${kind}: ${r.text}`);
  assert.match(r.headers["content-type"], /^application\/problem\+json/);
  const p = JSON.parse(r.text);
  assert.equal(p.type, `/docs#problem-${kind}`);
  assert.equal(p.status, status);
  assert.equal(p.title, ERROR_TABLE[kind].title);
  assert.equal(typeof p.detail, "string");
  assert.equal(typeof p.instance, "string");
  assert.doesNotMatch(r.text, /\n\s+at |\.ts:\d+|\.js:\d+/, "no stack trace");
  await good();
}

function rgbPng(w: number, h: number, f: (x: number, y: number) => [number, number, number, number]): Buffer {
  const p = new PNG({ width: w, height: h });
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) p.data.set(f(x, y), (y * w + x) * 4);
  return PNG.sync.write(p);
}

const b64 = (b: Buffer) => b.toString("base64");

test("health, readiness, models, spec, docs", async () => {
  assert.deepEqual((await request(app).get("/healthz")).body, { status: "ok" });
  assert.deepEqual((await request(app).get("/readyz")).body, { status: "ready" });
  for (const path of ["/v1/models", "/models"]) {
    const m = (await request(app).get(path).expect(200)).body.models[0];
    assert.equal(m.engine, "onnx");
    assert.deepEqual(m.classes, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
    assert.deepEqual(m.input, { height: 28, width: 28, channels: 1 });
    assert.equal(m.dv, 16);
    assert.equal(m.likelihood, "bernoulli");
    assert.equal(m.standardised, false);
    assert.deepEqual(m.classify_methods, ["centroid"]);
    assert.equal(m.evaluation.split, "test");
    assert.equal(m.evaluation.n, 10000);
    assert.deepEqual(m.limits, {
      max_body_bytes: 8388608,
      max_images: 64,
      max_pixels: 4000000,
      max_request_pixels: 16000000,
      max_inflight_pixels: 16000000,
      max_concurrent: 64,
      body_timeout_ms: 10000,
      timeout_ms: 30000,
      min_image_side: 8,
    });
  }
  const y = await request(app).get("/openapi.yaml").expect(200);
  assert.match(y.headers["content-type"], /yaml/);
  assert.equal(parse(y.text).openapi, "3.1.0");
  const d = await request(app).get("/docs").expect(200);
  assert.match(d.headers["content-type"], /text\/html/);
  assert.doesNotMatch(d.text, /<script|<link|src="http|href="http/i, "no external scripts or styles");
  for (const s of [
    "/embed/invariant",
    "/embed/equivariant",
    "/classify",
    "/generate",
    "problem-too-many-images",
    "EQUIVAE_MAX_IMAGES",
    "schema-GenerateRequest",
  ])
    assert.ok(d.text.includes(s), `docs mention ${s}`);
});

test("the spec's error table is the module's, and the generated types are fresh", () => {
  const doc = parse(readFileSync(join(ROOT, "openapi.yaml"), "utf8"));
  assert.deepEqual(
    doc["x-problem-types"],
    Object.entries(ERROR_TABLE).map(([kind, v]) => ({ kind, status: v.status })),
  );
  for (const [kind, v] of Object.entries(ERROR_TABLE))
    assert.ok(doc.info.description.includes(`| ${kind} | ${v.status} |`), `info.description lists ${kind}`);
  const out = join(tempDir("equivae-gen-"), "openapi.ts");
  const r = spawnSync(
    process.execPath,
    [join(ROOT, "node_modules/openapi-typescript/bin/cli.js"), "openapi.yaml", "-o", out],
    {
      cwd: ROOT,
      encoding: "utf8",
    },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.equal(
    readFileSync(out, "utf8"),
    readFileSync(join(ROOT, "src/generated/openapi.ts"), "utf8"),
    "src/generated/openapi.ts is stale: run npm run gen:types",
  );
});

test("real MNIST test images sent as PNG are classified correctly; v equals the engine's exactly", async () => {
  let correct = 0;
  for (let start = 0; start < 100; start += 50) {
    let req = request(app).post("/classify");
    for (let i = start; i < start + 50; i++) req = req.attach("image", png(i), `${i}.png`);
    const r = await req.expect(200);
    r.body.predictions.forEach(
      (p: { label: number }, k: number) => (correct += Number(p.label === test100.labels[start + k])),
    );
  }
  assert.ok(correct >= 90, `${correct}/100 correct`);
  const n = 20;
  const r = await request(app)
    .post("/embed/invariant")
    .send({ images: range(0, n).map((i) => b64(png(i))) })
    .expect(200);
  const want = await engine.embedInvariant(X.slice(0, n * PX), n);
  assert.deepEqual(r.body.v.flat(), Array.from(want));
  assert.equal(r.body.set, false);
  assert.deepEqual(r.body.preprocessing[0], {
    source: "png",
    original: { height: 28, width: 28, colour: "grey" },
  });
});

test("every input form gives the same embedding for the same pixels", async () => {
  const want = Array.from(await engine.embedInvariant(img(1).slice(), 1));
  const v = (r: request.Response) => {
    assert.equal(r.status, 200, r.text);
    return r.body.v[0];
  };
  const flat = Array.from(img(1));
  const bytes = Array.from(test100.pixels.subarray(PX, 2 * PX));
  const nested255 = range(0, 28).map((y) => bytes.slice(y * 28, (y + 1) * 28));
  const forms = [
    await request(app).post("/embed/invariant").attach("image", png(1), "x.png"),
    await request(app)
      .post("/v1/embed/invariant")
      .send({ images: [b64(png(1))] }),
    await request(app)
      .post("/embed/invariant")
      .send({ images: [`data:image/png;base64,${b64(png(1))}`] }),
    await request(app)
      .post("/embed/invariant")
      .send({ pixels: [flat] }),
    await request(app)
      .post("/embed/invariant")
      .send({ pixels: [nested255], pixels_range: "0-255" }),
    await request(app)
      .post("/embed/invariant")
      .send({ pixels: [flat.map((t) => 1 - t)], invert: true }),
  ];
  for (const r of forms) {
    const got = v(r);
    got.forEach((t: number, j: number) => assert.ok(Math.abs(t - want[j]) < 1e-5, `${t} vs ${want[j]}`));
  }
  assert.deepEqual(forms[5].body.preprocessing[0].inverted, true);
  // JPEG (lossy): same class, reported as jpeg.
  const rgba = Buffer.alloc(PX * 4);
  for (let i = 0; i < PX; i++) {
    rgba.fill(Math.round(img(1)[i] * 255), i * 4, i * 4 + 3);
    rgba[i * 4 + 3] = 255;
  }
  const jpg = jpeg.encode({ data: rgba, width: 28, height: 28 }, 95).data;
  const rj = await request(app).post("/classify").attach("image", jpg, "x.jpg").expect(200);
  assert.equal(rj.body.predictions[0].label, test100.labels[1]);
  assert.equal(rj.body.preprocessing[0].source, "jpeg");
});

test("resize, colour conversion, alpha and invert are applied and reported", async () => {
  const k = 3;
  const at = (x: number, y: number) => img(k)[Math.floor(y / 2) * 28 + Math.floor(x / 2)];
  // 56x56 RGB, dark-on-light red digit: resized (area), converted (luminance), inverted.
  const big = rgbPng(56, 56, (x, y) => {
    const t = Math.round((1 - at(x, y)) * 255);
    return [t, t, t, 255];
  });
  const r = await request(app)
    .post("/classify")
    .attach("image", big, "big.png")
    .field("invert", "true")
    .expect(200);
  assert.deepEqual(r.body.preprocessing[0], {
    source: "png",
    original: { height: 56, width: 56, colour: "rgba" },
    converted_from: "rgba",
    resized_from: [56, 56],
    inverted: true,
  });
  assert.equal(r.body.predictions[0].label, test100.labels[k]);
  // Transparent background with white strokes, composited on black (the default).
  const alpha = rgbPng(28, 28, (x, y) => {
    const t = img(k)[y * 28 + x];
    return [255, 0, 0, Math.round(t * 255)];
  });
  const ra = await request(app)
    .post("/classify")
    .send({ images: [b64(alpha)] })
    .expect(200);
  assert.equal(ra.body.preprocessing[0].alpha_composited_on, "black");
  assert.equal(ra.body.preprocessing[0].converted_from, "rgba");
  // Nested [h][w][3] colour arrays of another size.
  const nested = range(0, 14).map((y) => range(0, 14).map((x) => [at(4 * x, 4 * y), at(4 * x, 4 * y), 0.2]));
  const rn = await request(app)
    .post("/embed/invariant")
    .send({ pixels: [nested] })
    .expect(200);
  assert.deepEqual(rn.body.preprocessing[0].resized_from, [14, 14]);
  assert.equal(rn.body.preprocessing[0].converted_from, "rgb");
});

test("set embedding, equivariant embedding, top-k", async () => {
  const n = 5;
  let req = request(app).post("/embed/invariant").field("set", "true");
  for (let i = 0; i < n; i++) req = req.attach("image", png(i), `${i}.png`);
  const r = await req.expect(200);
  assert.equal(r.body.set, true);
  assert.equal(r.body.v.length, 1);
  const want = await engine.embedSet(X.slice(0, n * PX), [n]);
  r.body.v[0].forEach((t: number, j: number) => assert.ok(Math.abs(t - want[j]) < 1e-5));

  const e1 = await request(app)
    .post("/embed/equivariant")
    .send({ images: [b64(png(0)), b64(png(1))] })
    .expect(200);
  assert.equal(e1.body.v_from, "image");
  assert.equal(e1.body.mu.length, 2);
  assert.equal(e1.body.mu[0].length, 16);
  assert.equal(e1.body.logvar[1].length, 16);
  const e2 = await request(app)
    .post("/embed/equivariant")
    .send({ images: [b64(png(0))], class: "3" })
    .expect(200);
  const e3 = await request(app)
    .post("/embed/equivariant")
    .attach("image", png(0), "a.png")
    .field("class", "3")
    .expect(200);
  assert.equal(e2.body.v_from, "class");
  assert.deepEqual(e2.body.mu, e3.body.mu);
  assert.deepEqual(e2.body.v[0], Array.from(engine.centroids.slice(48, 64)));
  const v = Array.from({ length: 16 }, (_, i) => i / 16);
  const e4 = await request(app)
    .post("/embed/equivariant")
    .send({ images: [b64(png(0))], v })
    .expect(200);
  assert.equal(e4.body.v_from, "given");
  const want4 = await engine.encodeEquivariant(img(0).slice(), 1, Float32Array.from(v));
  assert.deepEqual(e4.body.mu[0], Array.from(want4.mu));

  const c = await request(app)
    .post("/classify")
    .send({ images: [b64(png(0))], top_k: 5 })
    .expect(200);
  assert.equal(c.body.predictions[0].top_k.length, 5);
  const ps = c.body.predictions[0].top_k.map((s: { p: number }) => s.p);
  assert.deepEqual(
    [...ps].sort((a, b) => b - a),
    ps,
  );
});

test("generate: PNG, grid, JSON, seeds, explicit z, interpolation, style transfer", async () => {
  const one = await request(app)
    .post("/generate")
    .set("Accept", "image/png")
    .send({ class: 7, seed: 1 })
    .buffer(true)
    .expect(200);
  assert.equal(one.headers["content-type"], "image/png");
  const p1 = PNG.sync.read(one.body);
  assert.deepEqual([p1.width, p1.height], [28, 28]);
  const j1 = await request(app).post("/generate").send({ class: "7", seed: 1 }).expect(200);
  assert.deepEqual(j1.body.shape, [28, 28, 1]);
  assert.equal(j1.body.z_from, "prior");
  const want = await engine.decode(Float32Array.from(j1.body.v), Float32Array.from(j1.body.z[0]), 1);
  assert.deepEqual(j1.body.images[0], Array.from(want));
  for (let i = 0; i < PX; i++) assert.equal(p1.data[i * 4], Math.round(want[i] * 255));
  const j2 = await request(app).post("/generate").send({ class: 7, seed: 1, format: "json" }).expect(200);
  assert.deepEqual(j2.body.z, j1.body.z, "same seed, same z");
  const j3 = await request(app).post("/generate").send({ class: 7, seed: 2, count: 3 }).expect(200);
  assert.equal(j3.body.images.length, 3);
  assert.notDeepEqual(j3.body.z[0], j1.body.z[0]);
  const grid = await request(app)
    .post("/generate")
    .send({ class: 2, count: 5, format: "grid" })
    .buffer(true)
    .expect(200);
  const g = PNG.sync.read(grid.body);
  assert.deepEqual([g.width, g.height], [84, 56]);
  const z = Array.from({ length: 16 }, () => 0);
  const jz = await request(app)
    .post("/generate")
    .send({ v: Array.from(engine.centroids.slice(0, 16)), z: [z, z] })
    .expect(200);
  assert.equal(jz.body.z_from, "given");
  assert.deepEqual(jz.body.images[0], jz.body.images[1]);
  const row = await request(app)
    .post("/generate")
    .set("Accept", "image/png")
    .send({ class: 5, interpolate: { from: z.map(() => -1), to: z.map(() => 1), steps: 6 } })
    .buffer(true)
    .expect(200);
  const rp = PNG.sync.read(row.body);
  assert.deepEqual([rp.width, rp.height], [168, 28]);
  const st = await request(app)
    .post("/generate")
    .attach("image", png(0), "a.png")
    .field("class", "3")
    .field("format", "json")
    .expect(200);
  assert.equal(st.body.z_from, "images");
  const vx = await engine.embedInvariant(img(0).slice(), 1);
  const mu = (await engine.encodeEquivariant(img(0).slice(), 1, vx)).mu;
  st.body.z[0].forEach((t: number, j: number) => assert.ok(Math.abs(t - mu[j]) < 1e-5));
});

test("every error row gives its problem+json, and the server keeps answering", async () => {
  const post = (path = "/classify") => request(app).post(path);
  // 400
  await problem(
    await post().set("Content-Type", "application/json").send('{"images": ['),
    400,
    "malformed-request",
  );
  await problem(
    await post().set("Content-Type", "application/json").send('{"pixels": [[NaN, 1]]}'),
    400,
    "malformed-request",
  );
  await problem(await post().send({ pixels: [[null, 1]] }), 400, "validation-failed");
  const unknown = await post().send({ images: [b64(png(0))], colour: "red" });
  await problem(unknown, 400, "validation-failed");
  assert.match(unknown.body.errors[0].message, /unknown field 'colour'/);
  await problem(await post().send({}), 400, "validation-failed");
  await problem(await post().send({ images: ["not base64!!"] }), 400, "invalid-base64");
  await problem(await post().send({ images: ["data:image/png,abc"] }), 400, "invalid-base64");
  const corrupt = Buffer.concat([png(0).subarray(0, 40), Buffer.alloc(30, 7)]);
  await problem(await post().attach("image", corrupt, "bad.png"), 400, "invalid-image");
  await problem(
    await post().set("Content-Type", "multipart/form-data; boundary=xyz").send("--xyz\r\nbroken"),
    400,
    "malformed-request",
  );
  await problem(await post().attach("picture", png(0), "a.png"), 400, "validation-failed");
  // 404
  await problem(await request(app).get("/nope"), 404, "not-found");
  await problem(await request(app).get("/classify"), 404, "not-found");
  // 413
  await problem(await post().send({ images: range(0, 65).map(() => "AAAA") }), 413, "too-many-images");
  let many = post();
  for (let i = 0; i < 65; i++) many = many.attach("image", png(0), `${i}.png`);
  await problem(await many, 413, "too-many-images");
  await problem(await post("/generate").send({ class: 1, count: 65 }), 413, "too-many-images");
  // A 10,000 x 10,000 PNG: only its signature and IHDR, rejected from the header before decoding.
  const ihdr = Buffer.alloc(33);
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(ihdr, 0);
  ihdr.writeUInt32BE(13, 8);
  ihdr.write("IHDR", 12, "latin1");
  ihdr.writeUInt32BE(10000, 16);
  ihdr.writeUInt32BE(10000, 20);
  ihdr[24] = 8;
  const huge = await post().attach("image", ihdr, "huge.png");
  await problem(huge, 413, "image-too-large");
  assert.match(huge.body.detail, /10000x10000/);
  const small = createApp(engine, { limits: { maxBodyBytes: 2000 }, warmUp: false });
  const tooBig = await request(small)
    .post("/classify")
    .send({ images: [b64(png(0)) + "A".repeat(3000)] });
  assert.equal(tooBig.status, 413);
  assert.equal(tooBig.body.type, "/docs#problem-payload-too-large");
  // 415
  await problem(await post().set("Content-Type", "text/plain").send("hello"), 415, "unsupported-media-type");
  await problem(
    await post().attach("image", Buffer.from("BM\x36\x00\x00\x00\x00\x00\x00\x00\x36\x00"), "a.bmp"),
    415,
    "unsupported-image-type",
  );
  // 422
  const tiny = await post().attach(
    "image",
    rgbPng(1, 1, () => [255, 255, 255, 255]),
    "1x1.png",
  );
  await problem(tiny, 422, "image-too-small");
  assert.match(tiny.body.detail, /minimum of 8x8/);
  await problem(await post().send({ pixels: [[0.5, 0.5]] }), 422, "invalid-pixels");
  await problem(await post().send({ pixels: [Array(784).fill(2)] }), 422, "invalid-pixels");
  await problem(await post("/generate").send({ class: "cat" }), 422, "unknown-class");
  await problem(await post("/generate").send({ class: 10 }), 422, "unknown-class");
  await problem(
    await post("/embed/equivariant").send({ images: [b64(png(0))], class: "ten" }),
    422,
    "unknown-class",
  );
  await problem(await post("/generate").send({ class: 1, z: [1, 2, 3] }), 422, "invalid-dimensions");
  // The shipped model was trained supervised: it has no q(y|x).
  const noPosterior = await post().send({ images: [b64(png(0))], method: "posterior" });
  await problem(noPosterior, 422, "method-unavailable");
  assert.match(
    noPosterior.body.detail,
    /needs q\(y\|x\), which this model does not have .* use method 'centroid'/,
  );
  await problem(
    await post().attach("image", png(0), "a.png").field("method", "posterior"),
    422,
    "method-unavailable",
  );
  await problem(await post().send({ images: [b64(png(0))], method: "knn" }), 400, "validation-failed");
  await problem(await post("/generate").send({ v: [1, 2], z: Array(16).fill(0) }), 422, "invalid-dimensions");
  await problem(
    await post("/embed/equivariant").send({ images: [b64(png(0))], v: [1] }),
    422,
    "invalid-dimensions",
  );
});

test("/metrics exposes request, latency, queue, inference and batch-size histograms", async () => {
  await good();
  const r = await request(app).get("/metrics").expect(200);
  // Every series names the model and the version that served it (X-Model-Version).
  const version = (await request(app).get("/v1/models")).body.models[0].version;
  const mv = `model="mnist",version="${version}"`;
  for (const name of [
    `equivae_http_requests_total{route="/classify",method="POST",status="200",${mv}}`,
    `equivae_http_request_duration_seconds_bucket{le="0.005",route="/classify",method="POST",status="200",${mv}}`,
    `equivae_http_requests_total{route="/classify",method="POST",status="415",${mv}}`,
    `equivae_queue_wait_seconds_bucket{le="0.001",op="invariant",${mv}}`,
    `equivae_inference_duration_seconds_count{op="decode",${mv}}`,
    `equivae_inference_batch_size_bucket{le="64",op="invariant",${mv}}`,
    "equivae_requests_in_flight",
    'equivae_model_loads_total{model="mnist",result="ok"} 1',
  ])
    assert.ok(r.text.includes(name), `metrics have ${name}`);
});

test("a photo rotated by its EXIF orientation is classified as its upright copy", async () => {
  // A 56x56 JPEG of test[0]; the same picture stored turned a quarter-turn counter-clockwise with
  // EXIF orientation 6 ("turn 90° clockwise to display"), as a phone camera writes it.
  const grey = Buffer.from(Array.from(img(0), (v) => Math.round(v * 255)));
  const upright = await sharp(grey, { raw: { width: 28, height: 28, channels: 1 } })
    .resize(56, 56)
    .jpeg({ quality: 95 })
    .toBuffer();
  const stored = await sharp(grey, { raw: { width: 28, height: 28, channels: 1 } })
    .resize(56, 56)
    .rotate(270)
    .jpeg({ quality: 95 })
    .withMetadata({ orientation: 6 })
    .toBuffer();
  assert.equal((await sharp(stored).metadata()).orientation, 6);
  const a = await request(app).post("/classify").attach("image", upright, "upright.jpg").expect(200);
  const b = await request(app).post("/classify").attach("image", stored, "rotated.jpg").expect(200);
  assert.equal(a.body.predictions[0].label, test100.labels[0]);
  assert.equal(b.body.predictions[0].label, a.body.predictions[0].label);
  assert.ok(Math.abs(b.body.predictions[0].p - a.body.predictions[0].p) < 0.05);
  assert.equal(b.body.preprocessing[0].oriented, 6);
  assert.equal(a.body.preprocessing[0].oriented, undefined);
  // Without the orientation applied, the stored pixels are another picture.
  const asStored = await sharp(stored).greyscale().raw().toBuffer();
  const asUpright = await sharp(upright).greyscale().raw().toBuffer();
  const diff = asStored.reduce((t, v, i) => t + Math.abs(v - asUpright[i]), 0) / asStored.length;
  assert.ok(diff > 20, `mean pixel difference ${diff}`);
});

test("invert auto: a dark-on-light digit is inverted and classified like the light-on-dark original", async () => {
  const px = img(1);
  const inverted = Float32Array.from(px, (v) => 1 - v);
  const r = await request(app)
    .post("/classify")
    .send({ pixels: [Array.from(px)], invert: "auto" })
    .expect(200);
  assert.equal(r.body.preprocessing[0].inverted, undefined);
  assert.equal(r.body.preprocessing[0].invert_auto.background, "dark");
  const q = await request(app)
    .post("/classify")
    .attach("image", encodePng(inverted, 28, 28, 1), "paper.png")
    .field("invert", "auto")
    .expect(200);
  assert.equal(q.body.preprocessing[0].inverted, true);
  assert.equal(q.body.preprocessing[0].invert_auto.background, "light");
  assert.equal(q.body.predictions[0].label, test100.labels[1]);
  assert.equal(q.body.predictions[0].label, r.body.predictions[0].label);
});

test("/docs: a table cell with an escaped pipe stays one cell (q(y\\|x) in method-unavailable)", async () => {
  const d = (await request(app).get("/docs").expect(200)).text;
  const row = /<tr><td>method-unavailable<\/td>(.*?)<\/tr>/.exec(d);
  assert.ok(row, "the spec's error table has a method-unavailable row");
  assert.equal([...row[1].matchAll(/<td>/g)].length, 2, row[0]);
  assert.ok(row[1].includes("q(y|x)"), row[0]);
  assert.doesNotMatch(d, /\\\|/, "no escaped pipe left in the page");
});

test("the demo page: / and its script and style, each with its type; the page's assets exist", async () => {
  const page = await request(app).get("/").expect(200);
  assert.match(page.headers["content-type"], /^text\/html; charset=utf-8/);
  const assets = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
  assert.deepEqual(assets.sort(), ["data:,", "demo/demo.css", "demo/demo.js", "docs"]);
  const js = await request(app).get("/demo/demo.js").expect(200);
  assert.match(js.headers["content-type"], /^text\/javascript/);
  assert.match((await request(app).get("/demo/demo.css").expect(200)).headers["content-type"], /^text\/css/);
  assert.equal((await request(app).get("/docs").expect(200)).status, 200, "the page's docs link");
  // The page calls the API by relative URLs only (it works behind a path prefix) and nothing else.
  assert.doesNotMatch(js.text, /https?:\/\//);
  assert.doesNotMatch(page.text, /https?:\/\//);
  await problem(await request(app).get("/demo/nope.js"), 404, "not-found");
  await problem(await request(app).get("/v1/"), 404, "not-found");
});
