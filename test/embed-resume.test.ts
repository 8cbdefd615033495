import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseNpyHeader } from "../src/embed/npy.js";
import type { EmbedState } from "../src/embed/run.js";
import { runCli } from "./helpers/cli.js";
import { pngImage, runAndKill, writeIdx } from "./helpers/embed.js";
import { tempDir } from "./helpers/paths.js";

/** After a kill -9 every output is still valid: .npy headers parse, files hold the recorded bytes. */
function assertNotCorrupt(state: string): void {
  const s = JSON.parse(readFileSync(state, "utf8")) as EmbedState;
  for (const [path, bytes] of Object.entries(s.files)) {
    assert.ok(statSync(path).size >= bytes, `${path} is shorter than its checkpoint`);
    if (path.endsWith(".npy")) {
      const h = parseNpyHeader(readFileSync(path).subarray(0, 128));
      assert.equal(h.descr, "<f4");
      assert.ok(
        statSync(path).size >= h.dataOffset + 4 * h.shape[0] * h.shape[1],
        `${path}: data shorter than its header`,
      );
    }
  }
}

function assertSameFiles(refDir: string, dir: string, names: string[]): void {
  const listed = readdirSync(dir).sort();
  assert.deepEqual(listed, [...names].sort(), "the same files, nothing left over");
  for (const n of names)
    assert.ok(readFileSync(join(dir, n)).equals(readFileSync(join(refDir, n))), `${n} differs`);
}

test("a .npy run killed twice with SIGKILL and resumed is byte-identical to an uninterrupted run", async () => {
  const root = tempDir("equivae-embed-resume-");
  const input = join(root, "in-idx3-ubyte");
  writeIdx(input, 12000);
  const ref = join(root, "ref");
  const dir = join(root, "run");
  [ref, dir].forEach((d) => mkdirSync(d));
  const common = ["embed", "--input", input, "--batch-size", "16", "--threads", "1", "--quiet"];
  const r = runCli([...common, "--output", join(ref, "out.npy")]);
  assert.equal(r.code, 0, r.stderr);

  const out = join(dir, "out.npy");
  const state = `${out}.progress.json`;
  const args = [...common, "--output", out, "--checkpoint-secs", "0"];
  const k1 = await runAndKill(args, state, (s) => s.records >= 1500);
  assertNotCorrupt(state);
  const k2 = await runAndKill([...args, "--resume"], state, (s) => s.records >= k1.records + 3000);
  assert.ok(k2.records > k1.records);
  assertNotCorrupt(state);
  const fin = runCli([...args, "--resume"]);
  assert.equal(fin.code, 0, fin.stderr);
  assert.match(fin.stderr, /resuming at record \d+ of 12000/);
  assert.match(fin.stdout, /embedded 12,000 of 12,000 images, skipped 0 .*resumed at record/);
  const names = ["out.v.npy", "out.mu.npy", "out.logvar.npy", "out.class.npy", "out.npy.ids.txt"];
  assertSameFiles(ref, dir, names);
});

test("an NDJSON run killed mid-way and resumed is byte-identical, skipped list included", async () => {
  const root = tempDir("equivae-embed-resume-");
  const input = join(root, "in.ndjson");
  const lines: string[] = [];
  for (let i = 0; i < 3000; i++) {
    if (i % 500 === 7) lines.push(JSON.stringify({ id: `bad${i}`, image: "%%%" }));
    else if (i % 500 === 9)
      lines.push(JSON.stringify({ id: `txt${i}`, image: Buffer.from("not a png").toString("base64") }));
    else lines.push(JSON.stringify({ id: `img${i}`, image: pngImage(i).toString("base64") }));
  }
  writeFileSync(input, lines.join("\n") + "\n");
  const ref = join(root, "ref");
  const dir = join(root, "run");
  [ref, dir].forEach((d) => mkdirSync(d));
  const common = ["embed", "--input", input, "--batch-size", "8", "--threads", "1", "--quiet"];
  const r = runCli([...common, "--output", join(ref, "out.ndjson")]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /embedded 2,988 of 3,000 images, skipped 12/);

  const out = join(dir, "out.ndjson");
  const state = `${out}.progress.json`;
  const args = [...common, "--output", out, "--checkpoint-secs", "0"];
  await runAndKill(args, state, (s) => s.records >= 1000 && s.skipped > 0);
  assertNotCorrupt(state);
  assert.ok(existsSync(`${out}.skipped.txt`));
  const fin = runCli([...args, "--resume"]);
  assert.equal(fin.code, 0, fin.stderr);
  assertSameFiles(ref, dir, ["out.ndjson", "out.ndjson.skipped.txt"]);
});

test("--resume refuses a changed input or different options, and a finished run has nothing to resume", () => {
  const root = tempDir("equivae-embed-resume-");
  const input = join(root, "in-idx3-ubyte");
  writeIdx(input, 40);
  const out = join(root, "o.npy");
  const state = `${out}.progress.json`;
  const base = ["embed", "--input", input, "--output", out, "--quiet", "--batch-size", "8"];
  assert.equal(runCli(base).code, 0);
  const again = runCli([...base, "--resume"]);
  assert.match(again.stderr, /o\.v\.npy exists and there is no interrupted run to resume/);
  // a fake interrupted state of another batch size
  writeFileSync(
    state,
    JSON.stringify({
      version: 1,
      input: {},
      options: {},
      total: 40,
      records: 8,
      rows: 8,
      skipped: 0,
      files: {},
    }),
  );
  assert.match(runCli(base).stderr, /an interrupted run; pass --resume/);
  assert.match(runCli([...base, "--resume"]).stderr, /cannot resume: the input changed/);
});
