/**
 * Training throughput, the project beside its PyTorch peer (../shared/bench/equivae_ref.py: the
 * same architecture, 516,225 parameters), printed as a table (not asserted).
 *   npm run bench:train [-- --batch 32,256 --steps 60 --backends tensorflow,wasm --share 1 --repeats 3]
 * Targets/s counts target images; each also passes n context images through f, with n cycling
 * 1, 2, ..., nMax (the peer's --n-cycle: an exact uniform mix). Both sides run on one thread:
 * TensorFlow's intra- and inter-op pools are set to 1 before it loads, the peer gets --threads 1.
 * The peer runs when Python with torch is found (PEER_PYTHON, default .tmp/peer/bin/python; see
 * ../shared/bench/README.md). Project and peer alternate per batch size, so a change of load
 * hits both; the load average is printed with every row. One reading says little on a shared
 * machine (the peer's own rate has moved 1.4x between readings minutes apart), so --repeats N
 * alternates them N times and adds a summary row: the ratio of the mean rates and the range of
 * the per-reading ratios.
 */
process.env.TF_NUM_INTRAOP_THREADS ??= "1";
process.env.TF_NUM_INTEROP_THREADS ??= "1";

import * as tf from "@tensorflow/tfjs";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { loadavg } from "node:os";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { BACKENDS, initBackend, type BackendInfo } from "../src/backend/index.js";
import { loadIdxDataset } from "../src/data/mnist.js";
import { ComplementarySampler } from "../src/data/sampler.js";
import { defaultConfig } from "../src/model/config.js";
import { EquiVAE } from "../src/model/equivae.js";
import { FlatAdam } from "../src/train/flat-adam.js";
import { makeTrainStep } from "../src/train/trainer.js";
import { Rng } from "../src/util/rng.js";

const { values } = parseArgs({
  options: {
    steps: { type: "string", default: "56" },
    batch: { type: "string", default: "32,256" },
    "n-max": { type: "string", default: "7" },
    share: { type: "string", default: "1" },
    repeats: { type: "string", default: "1" },
    backends: { type: "string", default: BACKENDS.filter((b) => b !== "cpu").join(",") },
    "peer-python": { type: "string", default: process.env.PEER_PYTHON ?? ".tmp/peer/bin/python" },
    "peer-script": { type: "string", default: "../shared/bench/equivae_ref.py" },
    "data-dir": { type: "string", default: "../shared/data/mnist" },
  },
});
const steps = Number(values.steps);
const nMax = Number(values["n-max"]);
const batches = String(values.batch).split(",").map(Number);
const shares = String(values.share).split(",").map(Number);
const repeats = Number(values.repeats);
for (const flag of ["steps", "n-max", "repeats", "batch", "share"] as const) {
  // --batch and --share take comma-separated lists; every entry must be a positive integer.
  const ok = String(values[flag])
    .split(",")
    .every((v) => Number.isInteger(Number(v)) && Number(v) >= 1);
  if (ok) continue;
  console.error(
    `bench:train: --${flag} must be a positive integer (a comma-separated list of them for --batch and --share), got '${values[flag]}'`,
  );
  process.exit(2);
}

const data = loadIdxDataset("mnist", { trainSize: 10000, valSize: 10 });
const sampler = new ComplementarySampler(data.train.labels, data.classNames);

/** Mean targets/s over `steps` steps after a warm-up of one n-cycle, n = 1..nMax in turn. */
function projectRate(B: number, share: number, stepsToRun: number): number {
  const model = new EquiVAE(defaultConfig({ height: 28, width: 28, channels: 1, numClasses: 10 }), 1);
  const opt = new FlatAdam(1e-3);
  const step = makeTrainStep(model, opt, data.train, sampler, { nMax, contextShare: share });
  const rng = new Rng(1);
  const batch = () => Array.from({ length: B }, () => rng.int(0, data.train.n - 1));
  for (let i = 0; i < nMax; i++) step(batch(), rng, 1 + (i % nMax));
  const t0 = performance.now();
  for (let i = 0; i < stepsToRun; i++) step(batch(), rng, 1 + (i % nMax));
  const secs = (performance.now() - t0) / 1000;
  opt.dispose();
  model.dispose();
  return (B * stepsToRun) / secs;
}

/** The peer's mean targets/s, or why it did not run. */
function peerRate(B: number): number | string {
  const python = resolve(String(values["peer-python"]));
  const script = resolve(String(values["peer-script"]));
  if (!existsSync(python)) return `no ${python} (../shared/bench/README.md says how to make it)`;
  if (!existsSync(script)) return `no ${script}`;
  const args = [
    script,
    "--filters",
    "16,16,32,32,64",
    "--batch",
    String(B),
    "--n-max",
    String(nMax),
    "--n-cycle",
  ];
  args.push("--threads", "1", "--bench-steps", String(steps), "--bench-warmup", String(nMax));
  args.push("--data-dir", resolve(String(values["data-dir"])), "--out", "/dev/null");
  const r = spawnSync(python, args, { encoding: "utf8" });
  const m = /\(mean ([\d.]+)\)/.exec(r.stdout ?? "");
  if (!m) return `peer failed: ${(r.stderr || r.stdout || "").trim().split("\n").pop()}`;
  return Number(m[1]);
}

const load = () => loadavg()[0].toFixed(2);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const backendText = (info: BackendInfo) => `${info.name}${info.detail ? ` (${info.detail})` : ""}`;

function printRow(
  info: BackendInfo,
  B: number,
  share: number,
  ours: number,
  peer: number | string,
  reading: string,
) {
  const ratio = typeof peer === "number" ? `${(ours / peer).toFixed(2)}x` : "";
  const peerText = typeof peer === "number" ? peer.toFixed(1) : peer;
  console.log(
    `| ${backendText(info)} | ${B} | ${share} | ${reading} | ${ours.toFixed(1)} | ${peerText} | ${ratio} | ${load()} |`,
  );
}

/** Mean rates over the readings; the ratio of the means, and the range of the per-reading ratios. */
function printSummary(info: BackendInfo, B: number, share: number, ours: number[], peers: number[]) {
  const paired = peers.length === ours.length;
  const ratios = paired ? ours.map((o, i) => o / peers[i]) : [];
  const ratio = paired
    ? `**${(mean(ours) / mean(peers)).toFixed(2)}x** (${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}x)`
    : "";
  const peerText = paired ? `**${mean(peers).toFixed(1)}**` : "";
  console.log(
    `| ${backendText(info)} | ${B} | ${share} | mean of ${ours.length} | **${mean(ours).toFixed(1)}** | ${peerText} | ${ratio} | ${load()} |`,
  );
}
console.log(
  `training throughput, targets/s: batch as below, n = 1..${nMax} in turn, share of context pools as below, ` +
    `28x28x1 MNIST, 516,225 parameters, 1 thread each, ${steps} steps`,
);
console.log("| backend | batch | share | reading | project | PyTorch peer | project / peer | load (1 min) |");
console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
for (const name of String(values.backends).split(",")) {
  let info: BackendInfo;
  try {
    info = await initBackend(name);
  } catch (e) {
    console.log(`| ${name} | | | | unavailable: ${(e as Error).message} | | | |`);
    continue;
  }
  for (const B of batches) {
    for (const share of shares) {
      const ours: number[] = [];
      const peers: number[] = [];
      for (let r = 0; r < repeats; r++) {
        // The cpu backend is ~100x slower than the others: a few steps only.
        ours.push(projectRate(B, share, info.name === "cpu" ? nMax : steps));
        const peer = share === 1 ? peerRate(B) : "the peer has no shared pools";
        if (typeof peer === "number") peers.push(peer);
        printRow(info, B, share, ours[r], peer, repeats > 1 ? `${r + 1}/${repeats}` : "");
      }
      if (repeats > 1) printSummary(info, B, share, ours, peers);
    }
  }
  tf.disposeVariables();
}
