/**
 * The CLI's colour-data paths (issue #8): --dataset svhn | folder, the likelihood flags, make-shapes,
 * and their one-line errors; a tiny folder run that eval reads back (validation split, and a clear
 * error when there is no test split).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { assertOneLineError, runCli } from "./helpers/cli.js";
import { tempDir } from "./helpers/paths.js";

test("one-line errors for the new datasets and flags", () => {
  const empty = tempDir("equivae-empty-");
  assertOneLineError(runCli(["train", "--dataset", "folder"]), /--dataset folder needs --data-dir ROOT/);
  assertOneLineError(
    runCli(["train", "--dataset", "folder", "--data-dir", empty]),
    /image folder .* has no class folders/,
  );
  assertOneLineError(
    runCli(["train", "--dataset", "svhn", "--data-dir", empty]),
    /missing data file: .*train_32x32\.mat .*ufldl\.stanford\.edu/,
  );
  assertOneLineError(runCli(["train", "--likelihood", "poisson"]), /unknown likelihood 'poisson'/);
  assertOneLineError(
    runCli(["train", "--standardise", "yes"]),
    /--standardise must be pixel, channel or off/,
  );
  assertOneLineError(
    runCli(["train", "--gaussian-scale", "0"]),
    /--gaussian-scale must be 'learned' or a positive number/,
  );
  assertOneLineError(
    runCli(["train", "--likelihood", "bernoulli", "--gaussian-scale", "0.5"]),
    /--gaussian-scale applies only to --likelihood gaussian/,
  );
  assertOneLineError(runCli(["train", "--image-size", "32"]), /apply only to --dataset folder/);
  assertOneLineError(
    runCli(["train", "--dataset", "folder", "--data-dir", empty, "--val-fraction", "1.5"]),
    /--val-fraction must be a number in \[0, 1\)/,
  );
  assertOneLineError(runCli(["make-shapes"]), /make-shapes: --out is required/);
});

test(
  "make-shapes is seeded; a tiny folder run trains, and eval reads its splits back",
  { timeout: 300_000 },
  () => {
    const root = tempDir("equivae-tiny-");
    const a = join(root, "a");
    const b = join(root, "b");
    for (const d of [a, b]) {
      const r = runCli([
        "make-shapes",
        "--out",
        d,
        "--per-class",
        "8",
        "--test-per-class",
        "0",
        "--seed",
        "3",
      ]);
      assert.equal(r.code, 0, r.stderr);
    }
    for (const f of ["circle/circle-0000.png", "triangle/triangle-0007.png"])
      assert.deepEqual(readFileSync(join(a, f)), readFileSync(join(b, f)), f);
    assert.ok(!existsSync(join(a, "test")));
    assertOneLineError(runCli(["make-shapes", "--out", a]), /already exists and is not empty/);

    const out = join(root, "run");
    const t = runCli([
      "train",
      "--dataset",
      "folder",
      "--data-dir",
      a,
      "--epochs",
      "1",
      "--filters",
      "4,4,8,8,8",
      "--hidden",
      "16",
      "--gaussian-scale",
      "0.5",
      "--backend",
      "wasm",
      "--out",
      out,
      "--quiet",
      "--no-keep-best",
    ]);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /likelihood=gaussian \(scale 0.5\), inputs standardised per channel/);
    assert.match(t.stdout, /data: folder train 21, validation 3/);
    const m = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
    assert.equal(m.model.gaussianScale, 0.5);
    assert.ok(m.files["decoder.onnx"] && m.files["standardisation.json"]);

    const ev = runCli([
      "eval",
      out,
      "--split",
      "validation",
      "--v-epochs",
      "0",
      "--benchmark-epochs",
      "1",
      "--backend",
      "wasm",
    ]);
    assert.equal(ev.code, 0, ev.stderr);
    const r = JSON.parse(readFileSync(join(out, "eval.json"), "utf8"));
    assert.equal(r.n, 3);
    assert.equal(r.dataset, "folder");
    assertOneLineError(
      runCli(["eval", out, "--split", "test", "--backend", "wasm"]),
      /image folder .* has no test split/,
    );
    // --resume refuses a different likelihood.
    assertOneLineError(
      runCli([
        "train",
        "--dataset",
        "folder",
        "--data-dir",
        a,
        "--epochs",
        "2",
        "--out",
        out,
        "--resume",
        "--likelihood",
        "bernoulli",
        "--filters",
        "4,4,8,8,8",
        "--hidden",
        "16",
        "--backend",
        "wasm",
      ]),
      /--resume: likelihood was "gaussian"/,
    );
  },
);
