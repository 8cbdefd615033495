/**
 * Inference throughput per engine and graph (printed, not asserted).
 *   npm run bench:inference [-- <checkpoint>] [--seconds 1.5] [--engines ort1,ort2,wasm,tensorflow]
 * Without a checkpoint, a freshly initialised default 28x28x1 model is saved and exported to a
 * temporary directory. img/s counts images through the graph (decoder: images produced; set
 * graph: images in the sets, 8 per set at batch 256). Timings include the engines' JS packing.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { initBackend } from "../src/backend/index.js";
import { exportOnnx } from "../src/export/onnx.js";
import { defaultConfig } from "../src/model/config.js";
import { EquiVAE } from "../src/model/equivae.js";
import { readManifest } from "../src/checkpoint/index.js";
import { saveCheckpoint } from "../src/train/checkpoint.js";
import type { Engine } from "../src/inference/engine.js";
import { OnnxEngine } from "../src/inference/onnx-engine.js";
import { TfjsEngine } from "../src/inference/tfjs-engine.js";
import { Rng } from "../src/util/rng.js";

const { values, positionals } = parseArgs({
  options: {
    seconds: { type: "string", default: "1.5" },
    engines: { type: "string", default: "ort1,ort2,wasm,tensorflow" },
    batches: { type: "string", default: "1,256" },
  },
  allowPositionals: true,
});
const seconds = Number(values.seconds);
const batches = String(values.batches).split(",").map(Number);
const engines = String(values.engines).split(",");

async function freshCheckpoint(): Promise<string> {
  await initBackend("cpu");
  const dir = join(mkdtempSync(join(tmpdir(), "equivae-bench-")), "ck");
  const cfg = defaultConfig({ height: 28, width: 28, channels: 1, numClasses: 10 });
  const m = new EquiVAE(cfg, 1);
  const names = Array.from({ length: 10 }, (_, i) => String(i));
  await saveCheckpoint(dir, {
    manifest: {
      model: cfg,
      parameterCount: m.parameterCount,
      parameters: m.parameterBreakdown(),
      dataset: { name: "none", source: "-", classNames: names, trainSize: 0, valSize: 0, preprocessing: "-" },
      training: {
        command: "bench-inference",
        resumedWith: [],
        options: {},
        epochsCompleted: 0,
        epochsPlanned: 0,
        backend: "cpu",
        wallSeconds: 0,
      },
      metrics: null,
    },
    model: m,
    centroids: {
      classNames: names,
      dv: cfg.dv,
      centroids: names.map(() => new Array(cfg.dv).fill(0)),
      counts: [],
    },
    state: { epoch: 0, step: 0, wallSeconds: 0 },
    metricsLines: [],
  });
  m.dispose();
  return dir;
}

const temp = positionals.length === 0;
const dir = temp ? await freshCheckpoint() : positionals[0];
const m0 = await readManifest(dir);
if (!("onnx" in m0)) {
  if (!temp) console.error(`exporting ONNX graphs into ${dir} (as equivae export does)`);
  await exportOnnx(dir);
}
const cfg = m0.model;
const px = cfg.height * cfg.width * cfg.channels;
const rng = new Rng(1);
const rand = (n: number) => Float32Array.from({ length: n }, () => rng.next());

type Job = { graph: string; batch: number; run: (e: Engine) => Promise<unknown> };
const jobs: Job[] = [];
for (const batch of batches) {
  const x = rand(batch * px);
  const v = rand(batch * cfg.dv);
  const z = rand(batch * cfg.dz);
  const setSize = Math.min(batch, 8);
  const sizes = new Array<number>(Math.ceil(batch / setSize)).fill(setSize);
  const xs = rand(sizes.length * setSize * px);
  jobs.push(
    { graph: "invariant", batch, run: (e) => e.embedInvariant(x, batch) },
    { graph: "invariant_set", batch, run: (e) => e.embedSet(xs, sizes) },
    { graph: "equivariant", batch, run: (e) => e.encodeEquivariant(x, batch, v) },
    { graph: "decoder", batch, run: (e) => e.decode(v, z, batch) },
  );
}

async function measure(e: Engine, job: Job): Promise<number> {
  await job.run(e);
  let iters = 0;
  const t0 = performance.now();
  while (iters < 3 || performance.now() - t0 < seconds * 1000) {
    await job.run(e);
    iters++;
  }
  const images =
    job.graph === "invariant_set" ? Math.ceil(job.batch / 8) * Math.min(job.batch, 8) : job.batch;
  return (images * iters * 1000) / (performance.now() - t0);
}

const results = new Map<string, string>();
const columns: string[] = [];
for (const name of engines) {
  let engine: Engine;
  let label: string;
  try {
    if (name === "ort1" || name === "ort2") {
      const threads = name === "ort1" ? 1 : 2;
      label = `ONNX Runtime, ${threads} thread${threads > 1 ? "s" : ""}`;
      engine = await OnnxEngine.load(dir, { threads });
    } else {
      const info = await initBackend(name);
      label = `TF.js ${info.name}`;
      engine = await TfjsEngine.load(dir);
    }
  } catch (e) {
    console.error(`${name}: unavailable (${(e as Error).message.split("\n")[0]})`);
    continue;
  }
  columns.push(label);
  for (const job of jobs) {
    const ips = await measure(engine, job);
    results.set(`${job.graph}/${job.batch}/${label}`, Math.round(ips).toLocaleString("en"));
    process.stderr.write(".");
  }
  await engine.dispose();
}
process.stderr.write("\n");

console.log(
  `inference img/s, ${cfg.height}x${cfg.width}x${cfg.channels}, ${m0.parameterCount.toLocaleString("en")} parameters${temp ? " (fresh model)" : ` (${dir})`}`,
);
console.log(`| graph | batch | ${columns.join(" | ")} |`);
console.log(`| --- | --- | ${columns.map(() => "---").join(" | ")} |`);
for (const job of jobs) {
  const cells = columns.map((c) => results.get(`${job.graph}/${job.batch}/${c}`) ?? "-");
  console.log(`| ${job.graph} | ${job.batch} | ${cells.join(" | ")} |`);
}
if (temp) rmSync(join(dir, ".."), { recursive: true, force: true });
