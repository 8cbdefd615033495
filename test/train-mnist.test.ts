/**
 * A real (short) training run on MNIST through the CLI, on the wasm backend, as CI runs it.
 *
 * What a few minutes can reach: 12,000 training images x 4 epochs (1,500 steps of batch 32)
 * gave a validation nearest-centroid error of 5.90% when this test was written (chance: 90%;
 * 39.7% after epoch 1, 19.0% after 2, 10.7% after 3). The threshold, 9%, leaves room for
 * numerical differences; the paper-level number (0.82% test error) needs the full 40-epoch run
 * on 55,000 images (docs/results.md), which is far beyond a CI budget.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { readManifest } from "../src/checkpoint/index.js";
import { runCli } from "./helpers/cli.js";
import { MNIST_DIR, tempDir } from "./helpers/paths.js";

const VAL_THRESHOLD = 0.09;
// Measured 8.2% on the first 2,000 test images (neural classifier on v: 7.3%).
const TEST_THRESHOLD = 0.12;

test(
  "4 epochs on 12,000 MNIST images: validation nearest-centroid error < 9%, and eval works",
  { timeout: 1_200_000 },
  async () => {
    const out = join(tempDir(), "mnist-ci");
    const r = runCli(
      [
        "train",
        "--dataset",
        "mnist",
        "--data-dir",
        MNIST_DIR,
        "--train-size",
        "12000",
        "--epochs",
        "4",
        // Shared context pools (the paper's independent sets are the default): ~2x faster on wasm,
        // which this test's time budget needs; the measured numbers below are for this setting.
        "--context-share",
        "4",
        "--backend",
        "wasm",
        "--out",
        out,
      ],
      {},
      1_100_000,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /backend: wasm/);
    assert.match(r.stdout, /516,225 parameters/);
    // Progress lines (not a TTY here: plain lines) carry img/s and an ETA.
    assert.match(r.stderr, /epoch 1\/4 \[[#-]+\] .* img\/s ETA /);

    const lines = readFileSync(join(out, "metrics.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.equal(lines.length, 4);
    for (const l of lines)
      for (const k of ["elbo", "recon", "kl", "valCentroidError", "trainCentroidError", "imgPerSec"])
        assert.ok(Number.isFinite(l[k]), k);
    const errs = lines.map((l) => l.valCentroidError);
    console.log(
      `validation nearest-centroid error per epoch: ${errs.map((e: number) => (e * 100).toFixed(2) + "%").join(", ")}`,
    );
    assert.ok(errs[3] < VAL_THRESHOLD, `validation error ${errs[3]}`);
    assert.ok(errs[3] < errs[0], "no progress");
    // z is used: the KL stays well above zero.
    assert.ok(lines[3].kl > 1, `KL ${lines[3].kl}`);
    assert.ok(lines[3].elbo > lines[0].elbo, "ELBO did not improve");

    const e = runCli([
      "eval",
      out,
      "--split",
      "test",
      "--data-dir",
      MNIST_DIR,
      "--limit",
      "2000",
      "--train-size",
      "3000",
      "--v-epochs",
      "5",
      "--benchmark-epochs",
      "1",
      "--backend",
      "wasm",
      "--record",
    ]);
    assert.equal(e.code, 0, e.stderr);
    assert.match(e.stdout, /\| nearest centroid on v \| \d+\.\d\d% \|/);
    const ev = JSON.parse(readFileSync(join(out, "eval.json"), "utf8"));
    assert.equal(ev.split, "test");
    assert.equal(ev.n, 2000);
    console.log(
      `test (first 2,000): centroid ${ev.centroidError}, neural-on-v ${ev.vClassifierError}, benchmark ${ev.benchmarkError}`,
    );
    assert.ok(ev.centroidError < TEST_THRESHOLD, `test centroid error ${ev.centroidError}`);
    assert.ok(ev.vClassifierError < 0.5 && ev.benchmarkError < 0.9);
    // --record: the same numbers in the manifest, whose file hashes still verify.
    const m = await readManifest(out);
    assert.match(m.evaluation!.command, /^equivae eval .* --record$/);
    for (const k of ["split", "n", "centroidError", "vClassifierError", "benchmarkError"] as const)
      assert.equal(m.evaluation![k], ev[k], k);
  },
);
