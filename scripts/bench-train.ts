/**
 * Training-step throughput per available TF.js backend (printed, not asserted).
 *   npm run bench:train [-- --steps 20 --batch 32 --n 4 --share 1,4,32]
 * img/s counts target images (each also needs its n context images through f).
 */
import * as tf from "@tensorflow/tfjs";
import { parseArgs } from "node:util";
import { BACKENDS, initBackend, type BackendInfo } from "../src/backend/index.js";
import { loadIdxDataset } from "../src/data/mnist.js";
import { ComplementarySampler } from "../src/data/sampler.js";
import { defaultConfig } from "../src/model/config.js";
import { EquiVAE } from "../src/model/equivae.js";
import { makeTrainStep } from "../src/train/trainer.js";
import { Rng } from "../src/util/rng.js";

const { values } = parseArgs({
  options: {
    steps: { type: "string", default: "20" },
    batch: { type: "string", default: "32" },
    n: { type: "string", default: "4" },
    share: { type: "string", default: "1,4,32" },
    backends: { type: "string", default: BACKENDS.join(",") },
  },
});
const steps = Number(values.steps);
const batchSize = Number(values.batch);
const n = Number(values.n);
const shares = String(values.share).split(",").map(Number);

const data = loadIdxDataset("mnist", { trainSize: 5000, valSize: 10 });
const sampler = new ComplementarySampler(data.train.labels, data.classNames);
console.log(
  `training-step throughput: batch ${batchSize}, n ~ U{1..${n}} context images per target, 28x28x1, default model`,
);
console.log("| backend | context share | img/s | ms/step |");
console.log("| --- | --- | --- | --- |");
for (const name of String(values.backends).split(",")) {
  let info: BackendInfo;
  try {
    info = await initBackend(name);
  } catch (e) {
    console.log(`| ${name} | - | unavailable: ${(e as Error).message} | |`);
    continue;
  }
  for (const share of shares) {
    const model = new EquiVAE(defaultConfig({ height: 28, width: 28, channels: 1, numClasses: 10 }), 1);
    const opt = tf.train.adam(1e-3);
    // n ~ U{1..nMax} as in training (nMax = --n); the cpu backend is ~100x slower: 2 steps.
    const step = makeTrainStep(model, opt, data.train, sampler, { nMax: n, contextShare: share });
    const rng = new Rng(1);
    const batch = () => Array.from({ length: batchSize }, () => rng.int(0, data.train.n - 1));
    const k = info.name === "cpu" ? 2 : steps;
    step(batch(), rng);
    step(batch(), rng);
    const t0 = performance.now();
    for (let i = 0; i < k; i++) step(batch(), rng);
    const ms = (performance.now() - t0) / k;
    console.log(
      `| ${info.name}${info.detail ? ` (${info.detail})` : ""} | ${share} | ${((batchSize * 1000) / ms).toFixed(1)} | ${ms.toFixed(0)} |`,
    );
    opt.dispose();
    model.dispose();
    if (info.name === "cpu") break;
  }
}
