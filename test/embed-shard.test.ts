/**
 * Sharded batch embedding (`embed --shard I/N`) and `embed merge`: N shards run as separate
 * processes (one killed with SIGKILL and resumed) merge into exactly the bytes of one unsharded run.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseShard, shardRange } from "../src/embed/shard.js";
import { assertOneLineError, runCli, type CliResult } from "./helpers/cli.js";
import { pngImage, runAndKill, writeIdx } from "./helpers/embed.js";
import { CLI, ROOT, tempDir } from "./helpers/paths.js";

/** The CLI as a separate process, without blocking (shards run side by side). */
function runCliAsync(args: string[]): Promise<CliResult> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", rej);
    child.on("close", (code) => res({ code: code ?? -1, stdout, stderr }));
  });
}

function assertSameBytes(refDir: string, dir: string, names: string[]): void {
  for (const n of names) {
    const a = readFileSync(join(refDir, n));
    const b = readFileSync(join(dir, n));
    assert.ok(a.equals(b), `${n} differs from the unsharded run's (${b.length} bytes, expected ${a.length})`);
  }
}

function ok(r: CliResult): CliResult {
  assert.equal(r.code, 0, r.stderr);
  return r;
}

test("shard rule: every record in exactly one shard, ranges contiguous and batch-aligned", () => {
  for (const total of [0, 1, 15, 16, 17, 100, 3000, 3001])
    for (const batch of [1, 7, 16, 256])
      for (const count of [1, 2, 3, 5, 8]) {
        let next = 0;
        for (let index = 0; index < count; index++) {
          const r = shardRange({ index, count }, total, batch);
          assert.equal(
            r.start,
            next,
            `${index}/${count} of ${total} by ${batch} starts where the last ended`,
          );
          assert.ok(r.end >= r.start);
          assert.ok(r.start % batch === 0 && (r.end % batch === 0 || r.end === total), "whole batches");
          next = r.end;
        }
        assert.equal(next, total, `${count} shards of ${total} by ${batch} cover the input`);
      }
  assert.deepEqual(shardRange({ index: 1, count: 3 }, 3000, 16), {
    index: 1,
    count: 3,
    start: 992,
    end: 2000,
  });
  assert.deepEqual(parseShard("2/3"), { index: 2, count: 3 });
  assert.deepEqual(parseShard("0/1"), { index: 0, count: 1 });
});

test("3 IDX shards as processes, one SIGKILLed and resumed, merge to the unsharded run's bytes", async () => {
  const root = tempDir("equivae-embed-shard-");
  const input = join(root, "in-idx3-ubyte");
  writeIdx(input, 3000);
  const ref = join(root, "ref");
  const parts = join(root, "parts");
  const merged = join(root, "merged");
  [ref, parts, merged].forEach((d) => mkdirSync(d));
  const common = ["embed", "--input", input, "--batch-size", "8", "--threads", "1", "--quiet"];
  const part = (i: number) => join(parts, `emb-${i}.npy`);
  const shard = (i: number) => [...common, "--output", part(i), "--shard", `${i}/3`, "--workers", "1"];

  // The unsharded reference and shards 0 and 2, side by side; shard 1 is killed mid-run.
  const [r, s0, s2] = await Promise.all([
    runCliAsync([...common, "--output", join(ref, "emb.npy")]),
    runCliAsync(shard(0)),
    runCliAsync(shard(2)),
  ]);
  ok(r);
  assert.match(ok(s0).stdout, /embedded 1,000 of 1,000 images.*shard 0\/3: records 0 to 999 of 3,000/);
  assert.match(ok(s2).stdout, /shard 2\/3: records 2,000 to 2,999 of 3,000/);
  const state = `${part(1)}.progress.json`;
  const killed = await runAndKill([...shard(1), "--checkpoint-secs", "0"], state, (s) => s.records >= 200);
  assert.ok(killed.records < 1000, `killed mid-shard (at ${killed.records})`);
  assert.deepEqual(killed.shard, { index: 1, count: 3, start: 1000, end: 2000 });

  const partArgs = [0, 1, 2].map(part);
  const merge = (out: string, ps: string[], extra: string[] = []) =>
    runCli(["embed", "merge", "--output", out, ...extra, ...ps]);
  const out = join(merged, "emb.npy");
  // an unfinished shard, the wrong shard resuming it, another input's shard, missing or twice
  assertOneLineError(merge(out, partArgs), /emb-1\.npy is not complete: .*progress\.json is left/);
  assertOneLineError(
    runCli([...common, "--output", part(1), "--shard", "0/3", "--resume"]),
    /cannot resume: the interrupted run is shard 1\/3, this one is shard 0\/3/,
  );
  assertOneLineError(
    runCli([...common, "--output", part(1), "--resume"]),
    /cannot resume: the interrupted run is shard 1\/3, this one is not/,
  );
  const fin = ok(runCli([...shard(1), "--checkpoint-secs", "0", "--resume"]));
  assert.match(fin.stderr, /resuming at record \d+ of 1000 of the shard/);
  assert.match(
    fin.stdout,
    /embedded 1,000 of 1,000 images.*shard 1\/3: records 1,000 to 1,999.*resumed at record/,
  );

  assertOneLineError(merge(out, [part(0), part(2)]), /shard 1\/3 is missing/);
  assertOneLineError(merge(out, [part(0), part(1), part(1), part(2)]), /shard 1\/3 is given twice/);
  const other = join(root, "other-idx3-ubyte");
  writeIdx(other, 60);
  const otherPart = join(parts, "other-0.npy");
  ok(
    runCli([
      "embed",
      "--input",
      other,
      "--batch-size",
      "8",
      "--quiet",
      "--output",
      otherPart,
      "--shard",
      "0/3",
    ]),
  );
  assertOneLineError(merge(out, [otherPart, part(1), part(2)]), /shards of different inputs/);
  const split2 = join(parts, "split2-0.npy");
  ok(runCli([...common, "--output", split2, "--shard", "0/2", "--what", "v"]));
  assertOneLineError(merge(out, [split2, part(1), part(2)]), /parts of different splits/);
  assertOneLineError(merge(join(merged, "emb.ndjson"), partArgs), /the shards wrote npy/);
  assert.deepEqual(readdirSync(merged), [], "a refused merge writes nothing");

  // Parts in any order; the .shard.json names work as well as the outputs.
  const m = ok(merge(out, [part(2), `${part(0)}.shard.json`, part(1)]));
  assert.match(m.stdout, /^merged 3 shards of 3,000 records: 3,000 embedded, 0 skipped/);
  const names = ["emb.v.npy", "emb.mu.npy", "emb.logvar.npy", "emb.class.npy", "emb.npy.ids.txt"];
  assert.deepEqual(readdirSync(merged).sort(), [...names].sort(), "exactly the unsharded run's files");
  assert.deepEqual(readdirSync(ref).sort(), [...names].sort());
  assertSameBytes(ref, merged, names);
  assertOneLineError(merge(out, partArgs), /emb\.v\.npy exists \(pass --force to overwrite\)/);
  ok(merge(out, partArgs, ["--force"]));
  assertSameBytes(ref, merged, names);
});

test("NDJSON with bad records and a blank line: 3 shards merge to the unsharded output and skipped list", async () => {
  const root = tempDir("equivae-embed-shard-");
  const input = join(root, "in.ndjson");
  const lines: string[] = [];
  for (let i = 0; i < 300; i++) {
    if (i === 10)
      lines.push(JSON.stringify({ id: "bad-b64", image: "%%%" })); // shard 0
    else if (i === 150)
      lines.push(""); // shard 1: a record, not an image
    else if (i === 250)
      lines.push("{not json"); // shard 2: id = its line number
    else if (i === 251)
      lines.push(JSON.stringify({ id: "txt", image: Buffer.from("not a png").toString("base64") }));
    else if (i % 50 === 3)
      lines.push(JSON.stringify(pngImage(i).toString("base64"))); // id = line number
    else lines.push(JSON.stringify({ id: `img${i}`, image: pngImage(i).toString("base64") }));
  }
  writeFileSync(input, lines.join("\n") + "\n");
  const ref = join(root, "ref");
  const parts = join(root, "parts");
  [ref, parts].forEach((d) => mkdirSync(d));
  const common = [
    "embed",
    "--input",
    input,
    "--batch-size",
    "8",
    "--threads",
    "1",
    "--workers",
    "1",
    "--quiet",
  ];
  const part = (i: number) => join(parts, `emb-${i}.ndjson`);
  const runs = await Promise.all([
    runCliAsync([...common, "--output", join(ref, "emb.ndjson")]),
    ...[0, 1, 2].map((i) => runCliAsync([...common, "--output", part(i), "--shard", `${i}/3`])),
  ]);
  runs.forEach(ok);
  assert.match(runs[0].stdout, /embedded 296 of 299 images, skipped 3/);
  assert.ok(existsSync(`${part(0)}.skipped.txt`) && !existsSync(`${part(1)}.skipped.txt`));
  const out = join(root, "emb.ndjson");
  const m = ok(runCli(["embed", "merge", "--output", out, part(0), part(1), part(2)]));
  assert.match(m.stdout, /296 embedded, 3 skipped.*skipped list: .*emb\.ndjson\.skipped\.txt$/m);
  assertSameBytes(ref, root, ["emb.ndjson", "emb.ndjson.skipped.txt"]);
  assert.match(readFileSync(out, "utf8"), /^\{"id":"4",/m, "line-number ids count from the input's start");
  assert.match(readFileSync(`${out}.skipped.txt`, "utf8"), /^251\t/m);
});

test("more shards than batches: empty shards merge too", async () => {
  const root = tempDir("equivae-embed-shard-");
  const input = join(root, "in-idx3-ubyte");
  writeIdx(input, 20);
  const common = [
    "embed",
    "--input",
    input,
    "--batch-size",
    "16",
    "--what",
    "v",
    "--workers",
    "1",
    "--quiet",
  ];
  const part = (i: number) => join(root, `p${i}.npy`);
  const runs = await Promise.all([
    runCliAsync([...common, "--output", join(root, "ref.npy")]),
    ...[0, 1, 2].map((i) => runCliAsync([...common, "--output", part(i), "--shard", `${i}/3`])),
  ]);
  runs.forEach(ok);
  assert.match(runs[1].stdout, /embedded 0 of 0 images.*shard 0\/3: no records/);
  ok(runCli(["embed", "merge", "--output", join(root, "all.npy"), part(0), part(1), part(2)]));
  assert.ok(readFileSync(join(root, "all.npy")).equals(readFileSync(join(root, "ref.npy"))));
  assert.ok(readFileSync(join(root, "all.npy.ids.txt")).equals(readFileSync(join(root, "ref.npy.ids.txt"))));
  // a part changed after its shard finished is refused
  writeFileSync(`${part(2)}.ids.txt`, "tampered\n");
  assertOneLineError(
    runCli(["embed", "merge", "--output", join(root, "all.npy"), "--force", part(0), part(1), part(2)]),
    /p2\.npy\.ids\.txt has 9 bytes, its shard recorded \d+: changed since shard 2\/3 finished/,
  );
});

test("bad --shard values and merge usage are one-line CLI errors", () => {
  const root = tempDir("equivae-embed-shard-");
  const input = join(root, "x.idx");
  writeIdx(input, 3);
  const e = (shard: string[]) =>
    runCli(["embed", "--input", input, "--output", join(root, "o.npy"), ...shard]);
  for (const bad of ["3/3", "a/b", "0/0", "1", "1/2/3", "0.5/2", ""])
    assertOneLineError(e(["--shard", bad]), /--shard must be I\/N with integers 0 <= I < N/);
  assertOneLineError(e(["--shard=-1/2"]), /--shard must be I\/N/);
  assertOneLineError(e(["--shard", "-1/2"]), /--shard/);
  assert.ok(!existsSync(join(root, "o.v.npy")), "nothing written");
  assertOneLineError(runCli(["embed", "merge", join(root, "p.npy")]), /--output is required/);
  assertOneLineError(runCli(["embed", "merge", "--output", join(root, "m.npy")]), /name the shard outputs/);
  assertOneLineError(
    runCli(["embed", "merge", "--output", join(root, "m.npy"), join(root, "p.npy")]),
    /p\.npy is not a finished shard: no p\.npy\.shard\.json/,
  );
  assert.match(runCli(["embed", "merge", "--help"]).stdout, /equivae embed merge --output PATH PART/);
  assert.match(runCli(["embed", "--help"]).stdout, /--shard I\/N/);
});
