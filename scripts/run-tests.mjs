#!/usr/bin/env node
// Runs the compiled test files (dist/test/**/*.test.js), each in its own `node --test` process
// (node's test runner, spec reporter), TEST_CONCURRENCY files at a time (default 2: the machines
// have 2 cores), the longest first (EXPECTED_S below), so that the long training tests overlap
// the many short files instead of running after them.
// Usage: node scripts/run-tests.mjs [name-filter ...]   (files whose path contains a filter)
//        TEST_CONCURRENCY=1 node scripts/run-tests.mjs  (one file at a time, output as it comes)
// With more than one file at a time, each file's output is printed in one block when it ends,
// headed by its name and duration; a table of the files' durations and a total come last.
// The longest file is the suite's critical path (semi-mnist: one wasm thread for ~12 min). Where
// `taskset` exists and this process may use 2+ CPUs, it gets the first CPU to itself and every other
// file runs on the rest: other files start servers, worker pools and browsers whose threads would
// otherwise take turns with it. TEST_PIN=0 turns that off.
// A file that hangs fails instead of stalling the suite: each runs in a process group of its own,
// killed (with whatever it started) once it has run TEST_FILE_TIMEOUT_S seconds (default: 4x its
// expected time, at least 600 s; 0 = no limit), and its output so far is printed. Node's
// --test-force-exit (where this node has it) ends a file whose tests are done but which still holds
// a handle (a child process a failed test did not stop), and the group is killed after every file,
// so that nothing a test started outlives its file.
import { existsSync, readdirSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { execFileSync, spawn, spawnSync } from "node:child_process";

// Seconds each slow file takes alone on a quiet 2-core machine (wasm backend): the order in which
// files start. The training tests use one thread each (wasm), so they are not kept apart: on 2
// cores each has its own. Files not listed: 1 s.
const EXPECTED_S = {
  "semi-mnist": 700,
  "train-mnist": 200,
  "shapes-train": 48,
  "onnx-export": 23,
  checkpoint: 21,
  "demo-browser": 9,
  "embed-resume": 8,
  kubernetes: 8,
  "malformed-corpus": 7,
  "embed-shard": 7,
  "wasm-kernels": 6,
  embed: 6,
};

function find(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...find(p));
    else if (name.endsWith(".test.js")) out.push(p);
  }
  return out;
}

const filters = process.argv.slice(2);
// Only tests whose source still exists: tsc never deletes the output of a removed test file.
const files = find("dist/test")
  .filter((f) => existsSync(f.replace(/^dist[\\/]/, "").replace(/\.js$/, ".ts")))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error("no test files found under dist/test (did the build run?)");
  process.exit(1);
}
const concurrency = Number(process.env.TEST_CONCURRENCY ?? 2);
if (!Number.isInteger(concurrency) || concurrency < 1) {
  console.error(`TEST_CONCURRENCY must be a whole number >= 1, not '${process.env.TEST_CONCURRENCY}'`);
  process.exit(1);
}
const nameOf = (f) => basename(f, ".test.js");
const expected = (f) => EXPECTED_S[nameOf(f)] ?? 1;
const fileTimeoutS = process.env.TEST_FILE_TIMEOUT_S;
if (fileTimeoutS !== undefined && !(Number(fileTimeoutS) >= 0)) {
  console.error(`TEST_FILE_TIMEOUT_S must be a number of seconds >= 0, not '${fileTimeoutS}'`);
  process.exit(1);
}
/** Seconds after which a file is killed (Infinity: never). */
const limitS = (f) =>
  fileTimeoutS === undefined ? Math.max(600, 4 * expected(f)) : Number(fileTimeoutS) || Infinity;
// Longest first; equal estimates keep the path order (Array.prototype.sort is stable).
const queue = [...files].sort((a, b) => expected(b) - expected(a));
const live = concurrency === 1 || files.length === 1;

/** The CPUs this process may run on (taskset's list, e.g. "0-1,4"), or null without taskset. */
function allowedCpus() {
  try {
    const out = execFileSync("taskset", ["-cp", String(process.pid)], { encoding: "utf8" });
    return out
      .split(":")
      .pop()
      .trim()
      .split(",")
      .flatMap((part) => {
        const [a, b] = part.split("-").map(Number);
        return b === undefined ? [a] : Array.from({ length: b - a + 1 }, (_, i) => a + i);
      });
  } catch {
    return null;
  }
}

/** CPU lists for the longest file and for the rest, or null when files are not pinned. */
function pinning() {
  // Only a long file is worth a CPU of its own (a training test: minutes, against seconds for most).
  if (process.env.TEST_PIN === "0" || concurrency < 2 || queue.length < 2 || expected(queue[0]) < 100)
    return null;
  const cpus = allowedCpus();
  if (!cpus || cpus.length < 2 || cpus.some((c) => !Number.isInteger(c))) return null;
  return { longest: queue[0], own: String(cpus[0]), rest: cpus.slice(1).join(",") };
}
const pin = pinning();
if (pin) console.log(`${nameOf(pin.longest)} runs on CPU ${pin.own}, the other files on CPU ${pin.rest}`);

const children = new Set();
/** Signals a file's whole process group: node --test, the file's own process, what it started. */
function killGroup(child, sig) {
  try {
    process.kill(-child.pid, sig);
  } catch {
    // The group is already gone.
  }
}
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    for (const c of children) killGroup(c, sig);
    process.exit(sig === "SIGINT" ? 130 : 143);
  });
}
// Node 20.14+ and 22+ know --test-force-exit; an older node refuses it ("bad option").
const forceExit =
  spawnSync(process.execPath, ["--test-force-exit", "--version"]).status === 0 ? ["--test-force-exit"] : [];

const fmt = (ms) => `${(ms / 1000).toFixed(1)} s`;
const COUNTS = ["tests", "pass", "fail", "cancelled", "skipped", "todo"];

/** Runs one file; resolves with its exit code, duration and node's summary counts. */
function runFile(file) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const args = [
      process.execPath,
      "--enable-source-maps",
      "--test",
      ...forceExit,
      "--test-reporter=spec",
      file,
    ];
    if (pin) args.unshift("taskset", "-c", file === pin.longest ? pin.own : pin.rest);
    // detached: a process group of its own, so that a timeout or the end reaches its grandchildren.
    const child = spawn(args[0], args.slice(1), { stdio: ["ignore", "pipe", "pipe"], detached: true });
    children.add(child);
    let timedOut = false;
    const timer = Number.isFinite(limitS(file))
      ? setTimeout(
          () => {
            timedOut = true;
            killGroup(child, "SIGKILL");
          },
          limitS(file) * 1000,
        )
      : undefined;
    const chunks = [];
    const take = (stream, out) =>
      stream.on("data", (d) => {
        chunks.push(d);
        if (live) out.write(d);
      });
    take(child.stdout, process.stdout);
    take(child.stderr, process.stderr);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      killGroup(child, "SIGKILL");
      children.delete(child);
      const ms = Date.now() - t0;
      let text = Buffer.concat(chunks).toString("utf8");
      if (timedOut) {
        const note = `\n✖ ${file} was still running after ${limitS(file)} s (TEST_FILE_TIMEOUT_S) and was killed; its output so far is above\n`;
        text += note;
        if (live) process.stdout.write(note);
      }
      if (live) process.stdout.write(`── ${file}: ${fmt(ms)}\n`);
      else process.stdout.write(`\n── ${file} (${fmt(ms)}) ──\n${text}`);
      const counts = {};
      for (const k of COUNTS) {
        const m = new RegExp(`^ℹ ${k} (\\d+)$`, "m").exec(text);
        counts[k] = m ? Number(m[1]) : 0;
      }
      resolve({
        file,
        code: timedOut ? 1 : (code ?? 1),
        signal: timedOut ? "timed out" : signal,
        ms,
        counts,
      });
    });
  });
}

const t0 = Date.now();
const results = [];
async function worker() {
  for (let f = queue.shift(); f !== undefined; f = queue.shift()) {
    console.log(live ? `\n── ${f}` : `▷ ${f}`);
    results.push(await runFile(f));
  }
}
await Promise.all(Array.from({ length: Math.min(concurrency, files.length) }, worker));

const wall = Date.now() - t0;
const failed = results.filter((r) => r.code !== 0);
const total = Object.fromEntries(COUNTS.map((k) => [k, results.reduce((s, r) => s + r.counts[k], 0)]));
const n = results.length;
console.log(`\n── ${n} test file${n === 1 ? "" : "s"}, ${Math.min(concurrency, n)} at a time ──`);
for (const r of [...results].sort((a, b) => b.ms - a.ms))
  console.log(`${fmt(r.ms).padStart(9)}  ${r.code === 0 ? "ok  " : "FAIL"}  ${r.file}`);
console.log(COUNTS.map((k) => `${k} ${total[k]}`).join(", "));
console.log(
  `wall time ${fmt(wall)} (the files' own times add up to ${fmt(results.reduce((s, r) => s + r.ms, 0))})`,
);
if (failed.length > 0) {
  console.log(`failed: ${failed.map((r) => r.file + (r.signal ? ` (${r.signal})` : "")).join(", ")}`);
  process.exit(1);
}
