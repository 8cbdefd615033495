/**
 * HTTP throughput of POST /classify (one 28x28 PNG, multipart field `image`) on loopback, printed as
 * markdown tables in one run (nothing is asserted):
 *  (a) the project: the real `node dist/src/cli.js serve` process (default --workers, --threads 1)
 *      at 1, 16 and 64 connections: req/s, p50, p99 (autocannon; latencies of every 2xx response);
 *  (b) the in-process ONNX Runtime ceiling: invariant.onnx at batch 1 and 64 on 1 thread (img/s);
 *  (c) when a peer venv exists (.tmp/peer, or $PEER_PYTHON: a venv folder or its python), the
 *      FastAPI peer of ../shared/bench/peer_server.py (PEER_THREADS=1) with uvicorn --workers 1 and 2;
 * then the ratios against their goals. Every server runs alone, on 127.0.0.1, started and stopped
 * here; each phase is bounded in time.
 *   npm run bench:http          env: BENCH_SECONDS (default 8), BENCH_WORKERS (--workers),
 *                               PEER_PYTHON, BENCH_SKIP_PEER=1
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname, join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { PNG } from "pngjs";
import { autocannon, freePort } from "./lib/load.js";
import { OnnxEngine } from "../src/inference/onnx-engine.js";
import { SERVE_NODE_FLAGS } from "../src/serve/config.js";

/** The repository root (this file is dist/scripts/bench-http.js once compiled). */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const CLI = join(ROOT, "dist", "src", "cli.js");
const MODEL_DIR = join(ROOT, "models", "mnist");
const PEER_APP_DIR = resolve(ROOT, "..", "shared", "bench");
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const CONNECTIONS = [1, 16, 64];
const WARMUP_SECONDS = 2;
const READY_TIMEOUT_MS = 90_000;

// ------------------------------------------------------------------------------------ load generator

interface Load {
  rps: number;
  p50: number;
  p99: number;
  mean: number;
  bad: number;
  load1: number;
}

/** A smooth 28x28 grey blob as PNG, wrapped in a multipart body (field `image`). */
function requestBody(): { body: Buffer; contentType: string; pngBytes: number } {
  const png = new PNG({ width: 28, height: 28, colorType: 0, inputColorType: 0, bitDepth: 8 });
  const grey = Buffer.alloc(28 * 28);
  for (let i = 0; i < grey.length; i++)
    grey[i] = Math.round(255 * Math.exp(-(((i % 28) - 14) ** 2 + (Math.floor(i / 28) - 14) ** 2) / 40));
  png.data = grey;
  const bytes = PNG.sync.write(png, { colorType: 0, inputColorType: 0, bitDepth: 8 });
  const boundary = "benchboundary";
  const body = Buffer.concat([
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="x.png"\r\nContent-Type: image/png\r\n\r\n`,
    ),
    bytes,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return { body, contentType: `multipart/form-data; boundary=${boundary}`, pngBytes: bytes.length };
}
const REQ = requestBody();

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** Loads `url` with POST /classify from `connections` connections for `seconds`. */
function cannon(url: string, connections: number, seconds: number): Promise<Load> {
  const lat: number[] = [];
  return new Promise((res, rej) => {
    const t = autocannon(
      {
        url: `${url}/classify`,
        method: "POST",
        headers: { "content-type": REQ.contentType },
        body: REQ.body,
        connections,
        duration: seconds,
        timeout: 10,
      },
      (err, r) => {
        if (err) return rej(err);
        const sorted = Float64Array.from(lat).sort();
        res({
          rps: r["2xx"] / r.duration,
          p50: percentile(sorted, 0.5),
          p99: percentile(sorted, 0.99),
          mean: lat.reduce((a, b) => a + b, 0) / Math.max(1, lat.length),
          bad: r.non2xx + r.errors + r.timeouts,
          load1: loadavg()[0],
        });
      },
    );
    t.on("response", (_c, status, _b, ms) => {
      if (status >= 200 && status < 300) lat.push(ms);
    });
  });
}

// --------------------------------------------------------------------------------------- processes

interface Proc {
  child: ChildProcess;
  url: string;
  stderr: () => string;
  exited: Promise<void>;
}
const running = new Set<ChildProcess>();

/** Starts a server in its own process group and waits until `readyPath` answers 200. */
async function startServer(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  port: number,
  readyPath: string,
): Promise<Proc> {
  let err = "";
  const child = spawn(cmd, args, { cwd: ROOT, env, detached: true, stdio: ["ignore", "ignore", "pipe"] });
  running.add(child);
  child.stderr!.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  let gone = false;
  const exited = new Promise<void>((res) =>
    child.once("exit", () => {
      gone = true;
      running.delete(child);
      res();
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (gone) throw new Error(`${cmd} exited before it was ready:\n${err}`);
    try {
      const r = await fetch(url + readyPath, { signal: AbortSignal.timeout(2000) });
      await r.arrayBuffer();
      if (r.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stopServer({ child, url, stderr: () => err, exited });
      throw new Error(`${cmd} was not ready within ${READY_TIMEOUT_MS / 1000} s:\n${err}`);
    }
    await sleep(100);
  }
  return { child, url, stderr: () => err, exited };
}

/** SIGTERM to the server's process group (uvicorn's workers included), SIGKILL after 15 s. */
async function stopServer(p: Proc): Promise<void> {
  const group = -p.child.pid!;
  const signal = (s: NodeJS.Signals) => {
    try {
      process.kill(group, s);
    } catch {
      // already gone
    }
  };
  if (p.child.exitCode === null && p.child.signalCode === null) signal("SIGTERM");
  const timer = setTimeout(() => signal("SIGKILL"), 15_000);
  await p.exited;
  clearTimeout(timer);
  signal("SIGKILL"); // any straggler of the group
  await sleep(500); // let the port and the cores settle before the next server
}

for (const s of ["SIGINT", "SIGTERM"] as const) {
  process.once(s, () => {
    for (const c of running) {
      try {
        process.kill(-c.pid!, "SIGKILL");
      } catch {
        // already gone
      }
    }
    process.exit(130);
  });
}

/** One classify answer (label and p of the top class), as a sanity check of each server. */
async function probe(url: string): Promise<string> {
  const r = await fetch(`${url}/classify`, {
    method: "POST",
    headers: { "content-type": REQ.contentType },
    body: REQ.body,
    signal: AbortSignal.timeout(10_000),
  });
  const j = (await r.json()) as { predictions?: Array<{ label: number; p: number }> };
  const top = j.predictions?.[0];
  return top ? `label ${top.label}, p ${top.p.toFixed(4)}` : `HTTP ${r.status} ${JSON.stringify(j)}`;
}

interface Measured {
  name: string;
  byConn: Map<number, Load>;
  check: string;
}

async function measure(name: string, start: () => Promise<Proc>): Promise<Measured> {
  const p = await start();
  try {
    const check = await probe(p.url);
    await cannon(p.url, 16, WARMUP_SECONDS); // warm-up, not counted
    const byConn = new Map<number, Load>();
    for (const c of CONNECTIONS) byConn.set(c, await cannon(p.url, c, SECONDS));
    return { name, byConn, check };
  } finally {
    await stopServer(p);
  }
}

// ------------------------------------------------------------------------------------------ the peer

/** The peer's uvicorn: $PEER_PYTHON (a venv folder, or a python inside one), else .tmp/peer. */
function peerUvicorn(): { cmd: string; pre: string[] } | undefined {
  const given = process.env.PEER_PYTHON;
  const venv = given ?? join(ROOT, ".tmp", "peer");
  if (existsSync(venv) && statSync(venv).isDirectory()) {
    const uv = join(venv, "bin", "uvicorn");
    return existsSync(uv) ? { cmd: uv, pre: [] } : undefined;
  }
  if (given !== undefined && existsSync(given)) return { cmd: given, pre: ["-m", "uvicorn"] };
  return undefined;
}

/** The peer's environment: one ORT thread; OpenBLAS pins of this machine off (they slow numpy). */
function peerEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PEER_THREADS: "1", PEER_MODEL_DIR: MODEL_DIR };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  return env;
}

// ------------------------------------------------------------------------------------------ ceiling

async function ceiling(batch: number, seconds: number): Promise<{ ips: number; load1: number }> {
  const engine = await OnnxEngine.load(MODEL_DIR, { threads: 1 });
  try {
    const px = 28 * 28;
    const x = new Float32Array(batch * px);
    for (let i = 0; i < x.length; i++)
      x[i] = Math.exp(-((((i % px) % 28) - 14) ** 2 + (Math.floor((i % px) / 28) - 14) ** 2) / 40);
    const warm = performance.now() + 500;
    while (performance.now() < warm) await engine.embedInvariant(x, batch);
    let n = 0;
    const t0 = performance.now();
    const end = t0 + seconds * 1000;
    while (performance.now() < end) {
      await engine.embedInvariant(x, batch);
      n += batch;
    }
    return { ips: n / ((performance.now() - t0) / 1000), load1: loadavg()[0] };
  } finally {
    await engine.dispose();
  }
}

// -------------------------------------------------------------------------------------------- main

const fmt = (x: number, d = 0) =>
  Number.isFinite(x)
    ? x.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d })
    : "-";
const la = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(" ");

console.log(`load average at start (1/5/15 min): ${la()}`);
console.log(
  `POST /classify, one ${REQ.pngBytes}-byte 28x28 PNG, ${SECONDS} s per run after a ${WARMUP_SECONDS} s warm-up, autocannon on 127.0.0.1\n`,
);

// (b) first, while no server runs.
const ceil1 = await ceiling(1, SECONDS);
const ceil64 = await ceiling(64, SECONDS);
console.log(
  "In-process ONNX Runtime ceiling, invariant.onnx, 1 thread (OnnxEngine.embedInvariant in a loop):\n",
);
console.log("| batch | img/s | load 1m |");
console.log("| --- | --- | --- |");
console.log(`| 1 | ${fmt(ceil1.ips)} | ${ceil1.load1.toFixed(2)} |`);
console.log(`| 64 | ${fmt(ceil64.ips)} | ${ceil64.load1.toFixed(2)} |\n`);

// (a) the project.
const serveArgs = ["serve", "--host", "127.0.0.1", "--threads", "1", "--drain-secs", "0"];
if (process.env.BENCH_WORKERS) serveArgs.push("--workers", process.env.BENCH_WORKERS);
const results: Measured[] = [];
{
  const port = await freePort();
  const args = [...SERVE_NODE_FLAGS, CLI, ...serveArgs, "--port", String(port)];
  const label = `project (serve${process.env.BENCH_WORKERS ? ` --workers ${process.env.BENCH_WORKERS}` : ""} --threads 1)`;
  results.push(
    await measure(label, () => startServer(process.execPath, args, { ...process.env }, port, "/readyz")),
  );
}

// (c) the peer.
const uv = process.env.BENCH_SKIP_PEER ? undefined : peerUvicorn();
if (uv === undefined) console.log("(no peer venv: .tmp/peer/bin/uvicorn or $PEER_PYTHON; peer skipped)\n");
else {
  for (const workers of [1, 2]) {
    const port = await freePort();
    const args = [
      ...uv.pre,
      "--app-dir",
      PEER_APP_DIR,
      "peer_server:app",
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "--workers",
      String(workers),
      "--no-access-log",
      "--log-level",
      "warning",
    ];
    results.push(
      await measure(`peer (FastAPI, uvicorn --workers ${workers}, ORT 1 thread)`, async () => {
        const p = await startServer(uv.cmd, args, peerEnv(), port, "/openapi.json");
        await sleep(workers > 1 ? 3000 : 500); // the other worker processes load their sessions
        return p;
      }),
    );
  }
}

console.log("| server | connections | req/s | mean ms | p50 ms | p99 ms | errors + non-2xx | load 1m |");
console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
for (const m of results) {
  for (const [c, r] of m.byConn)
    console.log(
      `| ${m.name} | ${c} | ${fmt(r.rps)} | ${fmt(r.mean, 2)} | ${fmt(r.p50, 2)} | ${fmt(r.p99, 2)} | ${r.bad} | ${r.load1.toFixed(2)} |`,
    );
}
console.log("\nAnswers to the same image: " + results.map((m) => `${m.name}: ${m.check}`).join("; ") + "\n");

// Ratios.
const project = results[0];
const peers = results.slice(1);
const at = (m: Measured, c: number) => m.byConn.get(c)!;
const bestPeer = (c: number) =>
  peers.reduce<Measured | undefined>(
    (b, m) => (b === undefined || at(m, c).rps > at(b, c).rps ? m : b),
    undefined,
  );
const rows: Array<[string, string, string, boolean | undefined]> = [];
rows.push([
  "project req/s at 64 connections / batch-1 ceiling img/s",
  `${fmt((100 * at(project, 64).rps) / ceil1.ips, 1)}%`,
  ">= 60%",
  at(project, 64).rps / ceil1.ips >= 0.6,
]);
const p64 = bestPeer(64);
const p1 = bestPeer(1);
rows.push([
  `project / best peer at 64 connections${p64 ? ` (${p64.name})` : ""}`,
  p64 ? `${fmt(at(project, 64).rps / at(p64, 64).rps, 2)}x` : "no peer",
  ">= 2x",
  p64 ? at(project, 64).rps / at(p64, 64).rps >= 2 : undefined,
]);
rows.push([
  "project p99 at 1 connection",
  `${fmt(at(project, 1).p99, 2)} ms`,
  "<= 3 ms",
  at(project, 1).p99 <= 3,
]);
rows.push([
  `project / best peer req/s at 1 connection${p1 ? ` (${p1.name})` : ""}`,
  p1 ? `${fmt(at(project, 1).rps / at(p1, 1).rps, 2)}x` : "no peer",
  ">= 1x",
  p1 ? at(project, 1).rps / at(p1, 1).rps >= 1 : undefined,
]);
console.log("| ratio | value | goal | met |");
console.log("| --- | --- | --- | --- |");
for (const [what, v, goal, ok] of rows)
  console.log(`| ${what} | ${v} | ${goal} | ${ok === undefined ? "-" : ok ? "yes" : "no"} |`);
console.log(`\nload average at end (1/5/15 min): ${la()}`);
