import { test } from "node:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { assertOneLineError, runCli } from "./helpers/cli.js";
import { tempDir } from "./helpers/paths.js";

function idx(dims: number[], data: Uint8Array): Uint8Array {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = 0x08;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, data]);
}

/** A tiny dataset directory: n images of 28x28, labels from `label(i)`. */
function dataset(
  n: number,
  label: (i: number) => number,
  opts: { labelCount?: number; badHeader?: boolean } = {},
): string {
  const dir = tempDir();
  const im = idx(
    [n, 28, 28],
    new Uint8Array(n * 784).map((_, k) => (k * 7) % 256),
  );
  if (opts.badHeader) im[0] = 0x42;
  const ln = opts.labelCount ?? n;
  writeFileSync(join(dir, "train-images-idx3-ubyte.gz"), gzipSync(im));
  writeFileSync(
    join(dir, "train-labels-idx1-ubyte.gz"),
    gzipSync(
      idx(
        [ln],
        Uint8Array.from({ length: ln }, (_, i) => label(i)),
      ),
    ),
  );
  return dir;
}

test("an unknown flag or command is one clear line", () => {
  assertOneLineError(runCli(["train", "--epochz", "3"]), /Unknown option '--epochz'/);
  assertOneLineError(runCli(["frobnicate"]), /unknown command 'frobnicate'/);
  assertOneLineError(runCli(["train", "--epochs", "x"]), /--epochs must be an integer/);
  assertOneLineError(runCli(["train", "--dataset", "cifar"]), /unknown dataset 'cifar'/);
  assertOneLineError(runCli(["train", "--backend", "gpu", "--train-size", "10"]), /unknown backend 'gpu'/);
});

test("missing data files are one clear line", () => {
  const empty = tempDir();
  assertOneLineError(runCli(["train", "--data-dir", empty]), /missing data file: .*train-images-idx3-ubyte/);
  assertOneLineError(runCli(["train", "--data-dir", join(empty, "nope")]), /missing data file|not found/);
  assertOneLineError(runCli(["train"], { EQUIVAE_DATA_DIR: empty }), /missing data file/);
});

test("a corrupt IDX header is one clear line", () => {
  const dir = dataset(5010, (i) => i % 10, { badHeader: true });
  assertOneLineError(runCli(["train", "--data-dir", dir]), /train-images-idx3-ubyte\.gz: not an IDX file/);
});

test("an image/label count mismatch is one clear line", () => {
  const dir = dataset(5010, (i) => i % 10, { labelCount: 5009 });
  assertOneLineError(
    runCli(["train", "--data-dir", dir]),
    /count mismatch: .* 5010 images but .* 5009 labels/,
  );
});

test("a class with fewer than 2 members is one clear line", () => {
  // The first 5,000 rows are the validation split; the training split gets one "9".
  const dir = dataset(5040, (i) => (i === 5005 ? 9 : i % 9));
  const out = join(tempDir(), "run");
  const r = runCli(["train", "--data-dir", dir, "--out", out, "--epochs", "1"]);
  assertOneLineError(r, /class 9 \(9\) has 1 labelled member; every class needs at least 2/);
});

test("eval of a directory that is not a checkpoint is one clear line", () => {
  const dir = tempDir();
  mkdirSync(join(dir, "x"));
  assertOneLineError(runCli(["eval", join(dir, "x")]), /not a checkpoint: .*manifest\.json is missing/);
  assertOneLineError(runCli(["eval"]), /usage: equivae eval <checkpoint>/);
});

test("a bad --labels budget is one clear line", () => {
  const dir = dataset(5100, (i) => i % 10); // 100 training images, 10 per class
  const train = (labels: string) =>
    runCli(["train", "--data-dir", dir, "--out", join(tempDir(), "run"), "--labels", labels]);
  assertOneLineError(train("200"), /--labels 200 is more than the 100 training images/);
  assertOneLineError(train("15"), /--labels 15: .* split evenly over the 10 classes .* at least 2 per class/);
  assertOneLineError(train("10"), /--labels 10: .* at least 2 per class \(a multiple of 10, >= 20\)/);
  assertOneLineError(train("x"), /--labels must be a positive integer or 'all'/);
  assertOneLineError(
    runCli(["train", "--data-dir", dir, "--out", join(tempDir(), "w"), "--labelled-warmup-steps", "5"]),
    /--labelled-warmup-steps needs --labels N/,
  );
  const semi = (...extra: string[]) =>
    runCli(["train", "--data-dir", dir, "--out", join(tempDir(), "w"), "--labels", "20", ...extra]);
  assertOneLineError(
    semi("--labelled-warmup-steps", "x"),
    /--labelled-warmup-steps must be an integer of at least 0 \(got 'x'\)/,
  );
  assertOneLineError(
    runCli(["train", "--data-dir", dir, "--out", join(tempDir(), "u"), "--unlabelled-context", "all"]),
    /--unlabelled-context needs --labels N/,
  );
  assertOneLineError(
    semi("--unlabelled-context", "0"),
    /--unlabelled-context must be an integer of at least 1 \(got '0'\)/,
  );
  // 9s are rare: 3 per class is more than class 9 has.
  const skewed = dataset(5100, (i) => (i >= 5000 && i < 5002 ? 9 : i % 9));
  assertOneLineError(
    runCli(["train", "--data-dir", skewed, "--out", join(tempDir(), "r"), "--labels", "30"]),
    /class 9 \(9\) has only 2 training images, fewer than the 3 per class/,
  );
});
