/**
 * Memory of one serving replica, for the Kubernetes requests/limits (docs/scaling.md): starts the
 * real server (`node --max-semi-space-size=64 dist/src/cli.js serve`, as the image runs it), reads
 * its resident set (VmRSS of the process: its worker threads share it) once ready and idle, then
 * loads POST /classify (a 28x28 PNG, multipart, as scripts/bench-http.ts does) with autocannon at
 * MEASURE_CONNECTIONS connections for MEASURE_SECONDS s, polling VmRSS every 100 ms; prints the
 * peak, VmHWM, the idle figure again after the load, and the load average.
 *   npm run build && node dist/scripts/measure-rss.js
 *   env: MEASURE_WORKERS (--workers, default 2), MEASURE_CONNECTIONS (64), MEASURE_SECONDS (10),
 *        MEASURE_SIDE (the image's side, default 28)
 */
import { autocannon, freePort, type CannonResult } from "./lib/load.js";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { PNG } from "pngjs";
import { SERVE_NODE_FLAGS } from "../src/serve/config.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const CLI = join(ROOT, "dist", "src", "cli.js");
const WORKERS = Number(process.env.MEASURE_WORKERS ?? 2);
const CONNECTIONS = Number(process.env.MEASURE_CONNECTIONS ?? 64);
const SECONDS = Number(process.env.MEASURE_SECONDS ?? 10);
/** The uploaded image's side (28: an MNIST digit; 1000: a photo-sized 1-megapixel image). */
const SIDE = Number(process.env.MEASURE_SIDE ?? 28);

/** VmRSS, VmHWM (MiB) and thread count of a process, from /proc/PID/status. */
function status(pid: number): { rss: number; hwm: number; threads: number } {
  const s = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(s)?.[1] ?? NaN);
  const threads = Number(/^Threads:\s+(\d+)/m.exec(s)?.[1] ?? NaN);
  return { rss: kb("VmRSS") / 1024, hwm: kb("VmHWM") / 1024, threads };
}

/** A smooth grey blob, SIDE x SIDE, as PNG in a multipart body (field `image`). */
function body(): { body: Buffer; contentType: string } {
  const png = new PNG({ width: SIDE, height: SIDE, colorType: 0, inputColorType: 0, bitDepth: 8 });
  const grey = Buffer.alloc(SIDE * SIDE);
  const c = SIDE / 2;
  const w = (40 * SIDE * SIDE) / (28 * 28);
  for (let i = 0; i < grey.length; i++)
    grey[i] = Math.round(255 * Math.exp(-(((i % SIDE) - c) ** 2 + (Math.floor(i / SIDE) - c) ** 2) / w));
  png.data = grey;
  const bytes = PNG.sync.write(png, { colorType: 0, inputColorType: 0, bitDepth: 8 });
  const b = "measureboundary";
  return {
    body: Buffer.concat([
      Buffer.from(
        `--${b}\r\nContent-Disposition: form-data; name="image"; filename="x.png"\r\nContent-Type: image/png\r\n\r\n`,
      ),
      bytes,
      Buffer.from(`\r\n--${b}--\r\n`),
    ]),
    contentType: `multipart/form-data; boundary=${b}`,
  };
}

async function main(): Promise<void> {
  const port = await freePort();
  const args = [...SERVE_NODE_FLAGS, CLI, "serve", "--port", String(port), "--host", "127.0.0.1"];
  args.push("--workers", String(WORKERS), "--log-level", "warn");
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ORT_DISABLE_TELEMETRY: "1" },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const pid = child.pid!;
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error("the server exited before it was ready");
    const ok = await fetch(`${url}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) throw new Error("the server was not ready within 90 s");
    await sleep(100);
  }
  await sleep(2000);
  const idle = status(pid);
  const req = body();
  let peak = idle.rss;
  let peakThreads = idle.threads;
  const poll = setInterval(() => {
    const s = status(pid);
    peak = Math.max(peak, s.rss);
    peakThreads = Math.max(peakThreads, s.threads);
  }, 100);
  const r = await new Promise<CannonResult>((res, rej) =>
    autocannon(
      {
        url: `${url}/classify`,
        method: "POST",
        headers: { "content-type": req.contentType },
        body: req.body,
        connections: CONNECTIONS,
        duration: SECONDS,
        timeout: 10,
      },
      (err, out) => (err ? rej(err) : res(out)),
    ),
  );
  clearInterval(poll);
  const load = loadavg();
  const atEnd = status(pid);
  // Idle decoding workers exit after 5 s; wait past that and read the idle figure again.
  await sleep(8000);
  const after = status(pid);
  child.kill("SIGTERM");
  await new Promise((res) => child.once("exit", res));
  const mib = (x: number) => `${x.toFixed(0)} MiB`;
  console.log(`date: ${new Date().toISOString()}`);
  console.log(
    `node ${process.version}, serve --workers ${WORKERS}, ${CONNECTIONS} connections, ${SECONDS} s, ${SIDE}x${SIDE} PNG`,
  );
  console.log(`idle after ready: RSS ${mib(idle.rss)} (${idle.threads} threads)`);
  console.log(
    `under load: peak RSS ${mib(peak)} (polled every 100 ms), VmHWM ${mib(atEnd.hwm)}, ` +
      `${peakThreads} threads at most; ${Math.round(r["2xx"] / r.duration)} req/s 2xx, ` +
      `${r.non2xx + r.errors + r.timeouts} not 2xx (by status: ` +
      `${JSON.stringify(Object.fromEntries(Object.entries(r.statusCodeStats ?? {}).map(([k, v]) => [k, v.count])))})`,
  );
  console.log(`idle 8 s after the load: RSS ${mib(after.rss)} (${after.threads} threads)`);
  console.log(`load average at the end of the load: ${load.map((x) => x.toFixed(2)).join(" ")}`);
}

await main();
