import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import request from "supertest";
import { DEFAULT_MODEL } from "../src/embed/cli.js";
import { planEmbed, runEmbed } from "../src/embed/run.js";
import { loadEngine, type Engine } from "../src/inference/index.js";
import { createApp } from "../src/serve/app.js";
import { jpegImage, pngImage, readNpy } from "./helpers/embed.js";
import { tempDir } from "./helpers/paths.js";

let engine: Engine;
before(async () => {
  engine = await loadEngine(DEFAULT_MODEL, { engine: "onnx", threads: 1 });
});
after(async () => {
  await engine.dispose();
});

test("embed .npy rows equal POST /embed/invariant for the same image files", async () => {
  const dir = tempDir("equivae-embed-http-");
  const src = join(dir, "images");
  mkdirSync(src);
  const exact: Record<string, Buffer> = {
    "a-grey.png": pngImage(1),
    "b-rgb.png": pngImage(2, 28, 28, "rgb"),
    "c-rgba.png": pngImage(3, 28, 28, "rgba"),
    "d.jpg": jpegImage(4),
  };
  const resized: Record<string, Buffer> = {
    "e-big.png": pngImage(5, 70, 56),
    "f-small.jpg": jpegImage(6, 14, 20),
  };
  for (const [n, b] of Object.entries({ ...exact, ...resized })) writeFileSync(join(src, n), b);
  const opts = {
    input: src,
    output: join(dir, "v.npy"),
    what: ["v" as const],
    progress: false,
    log: () => undefined,
  };
  await runEmbed(await planEmbed(opts), engine, opts);
  const ids = readFileSync(`${opts.output}.ids.txt`, "utf8").trim().split("\n");
  const npy = readNpy(opts.output).data;

  const app = createApp(engine, { log: () => undefined });
  const names = ids;
  const r = await request(app)
    .post("/embed/invariant")
    .send({ images: names.map((n) => readFileSync(join(src, n)).toString("base64")) })
    .expect(200);
  const v = r.body.v as number[][];
  assert.equal(v.length, names.length);
  names.forEach((name, i) => {
    const mine = npy.subarray(i * 16, (i + 1) * 16);
    const http = Float32Array.from(v[i]);
    if (name in exact) assert.deepEqual(mine, http, `${name}: the same float32 values`);
    else mine.forEach((x, j) => assert.ok(Math.abs(x - http[j]) < 1e-4, `${name}[${j}]: ${x} vs ${http[j]}`));
  });
});
