// Abuse benchmark: starts the real server process (node dist/src/cli.js serve) on 127.0.0.1 and
// runs four attacks in turn, each BENCH_SECONDS (default 8), while measuring /healthz latency (one
// GET every 20 ms on one keep-alive socket) and a valid client (one POST /classify every 50 ms, each
// on a fresh connection): (a) PNG bombs: 4 senders of requests with four 2000x2000 16-bit RGBA
// PNGs (at the 4,000,000-pixel limit); (b) slow bodies: 64 sockets that announce a Content-Length
// and trickle one byte every 2 s; (c) chunked oversize: 4 senders streaming 45 MiB chunked
// multipart bodies; (d) overload: 200 autocannon connections on /classify. Prints one markdown
// table and the load average before and after. Printed, not asserted. Every loop is bounded in
// count and time, and the script stops by itself (a watchdog ends it). Traffic goes only to
// 127.0.0.1. Extra server flags: BENCH_SERVER_ARGS="--workers 2 ...".
// Usage: npm run bench:attack
import { Agent, request } from "node:http";
import { connect, type Socket } from "node:net";
import { loadavg } from "node:os";
import { encodeImage, flatImage, mnistLike, multipartBody, type Part } from "../test/helpers/corpus.js";
import { send, type SendResult } from "../test/helpers/raw-http.js";
import { readMetric, startServerProcess } from "../test/helpers/server-process.js";
import { Rng } from "../src/util/rng.js";
import { autocannon } from "./lib/load.js";

const SECONDS = Math.max(1, Number(process.env.BENCH_SECONDS ?? 8));
const WINDOW_MS = SECONDS * 1000;
const serverArgs = (process.env.BENCH_SERVER_ARGS ?? "").split(/\s+/).filter(Boolean);
// Whatever happens, stop: 5 phases of the window plus settling, start-up and shutdown.
const WATCHDOG_MS = 5 * (WINDOW_MS + 25_000) + 120_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fmtLoad = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(" ");

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function tally(into: Map<string, number>, key: string, n = 1) {
  into.set(key, (into.get(key) ?? 0) + n);
}

const outcome = (r: SendResult) => (r.error ? r.error : String(r.status));

function fmtTally(m: Map<string, number>): string {
  if (m.size === 0) return "-";
  return [...m.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k}: ${n}`)
    .join(", ");
}

console.log(`load average at start: ${fmtLoad()}`);
const server = await startServerProcess(["--threads", "1", ...serverArgs]);
const port = server.port;
const watchdog = setTimeout(() => {
  console.error("bench-attack: watchdog fired; stopping");
  server.child.kill("SIGKILL");
  process.exit(3);
}, WATCHDOG_MS);
watchdog.unref();

// ---------------------------------------------------------------- the payloads
const digit = await encodeImage(mnistLike(new Rng(1)), 28, 28, "png");
const validBody = Buffer.from(JSON.stringify({ images: [digit.toString("base64")] }));
const bombPng = await flatImage(2000, 2000, "png", { channels: 4, sixteenBit: true });
const bombParts: Part[] = [0, 1, 2, 3].map((k) => ({
  name: "image",
  filename: `bomb${k}.png`,
  type: "image/png",
  data: bombPng,
}));
const bombBody = multipartBody(bombParts, "bombB");
const hugeBody = multipartBody(
  [
    {
      name: "image",
      filename: "huge.png",
      type: "image/png",
      data: Buffer.concat([digit.subarray(0, 33), Buffer.alloc(45 * 1024 * 1024)]),
    },
  ],
  "hugeB",
);
const cannonBody = multipartBody(
  [{ name: "image", filename: "x.png", type: "image/png", data: digit }],
  "cannonB",
);

// ---------------------------------------------------------------- the probes
interface Probe {
  healthz: number[];
  healthzFailures: number;
  valid: Map<string, number>;
  validTotal: number;
}

/** Runs `attack` for the window while probing; returns the probe record. */
async function measured(attack: (until: number) => Promise<void>): Promise<Probe> {
  const until = performance.now() + WINDOW_MS;
  const probe: Probe = { healthz: [], healthzFailures: 0, valid: new Map(), validTotal: 0 };
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const healthz = (async () => {
    for (let i = 0; i < WINDOW_MS / 20 + 10 && performance.now() < until; i++) {
      const t = performance.now();
      const ok = await new Promise<boolean>((resolve) => {
        const req = request({ host: "127.0.0.1", port, path: "/healthz", agent, timeout: 5000 }, (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode === 200));
          res.on("error", () => resolve(false));
        });
        req.on("timeout", () => req.destroy(new Error("timeout")));
        req.on("error", () => resolve(false));
        req.end();
      });
      const ms = performance.now() - t;
      probe.healthz.push(ms);
      if (!ok) probe.healthzFailures++;
      if (ms < 20) await sleep(20 - ms);
    }
  })();
  const inflight: Promise<void>[] = [];
  const valid = (async () => {
    for (let i = 0; i < WINDOW_MS / 50 + 10 && performance.now() < until; i++) {
      probe.validTotal++;
      inflight.push(
        send(port, "/classify", {
          headers: { "content-type": "application/json" },
          body: validBody,
          timeoutMs: 5000,
        }).then((r) => tally(probe.valid, outcome(r))),
      );
      await sleep(50);
    }
  })();
  await Promise.all([attack(until), healthz, valid]);
  await Promise.all(inflight);
  agent.destroy();
  return probe;
}

/** `n` senders repeating `one()` until the deadline (at most `cap` requests each). */
async function senders(
  n: number,
  until: number,
  cap: number,
  one: () => Promise<SendResult>,
  into: Map<string, number>,
) {
  await Promise.all(
    Array.from({ length: n }, async () => {
      for (let i = 0; i < cap && performance.now() < until; i++) tally(into, outcome(await one()));
    }),
  );
}

interface Row {
  attack: string;
  probe: Probe;
  attackResults: Map<string, number>;
  rssMb?: number;
  /** Seconds after the attack until /healthz answered within 100 ms and a valid request got 200 again. */
  settleS: number;
}
const rows: Row[] = [];

async function phase(name: string, attack: (until: number, results: Map<string, number>) => Promise<void>) {
  const results = new Map<string, number>();
  console.error(`bench-attack: ${name} (${SECONDS} s)`);
  const probe = await measured((until) => attack(until, results));
  let rssMb: number | undefined;
  try {
    const rss = await readMetric(port, "equivae_process_resident_memory_bytes");
    rssMb = rss === undefined ? undefined : rss / 1024 / 1024;
  } catch {
    rssMb = undefined;
  }
  // Let the server settle before the next phase: until /healthz answers within 100 ms and a valid
  // /classify is 200 within 1 s (at most 60 s).
  const t0 = performance.now();
  for (let i = 0; i < 120 && performance.now() - t0 < 60_000; i++) {
    const h = await send(port, "/healthz", { method: "GET", timeoutMs: 2000 });
    const v = await send(port, "/classify", {
      headers: { "content-type": "application/json" },
      body: validBody,
      timeoutMs: 2000,
    });
    if (h.status === 200 && h.ms < 100 && v.status === 200 && v.ms < 1000) break;
    await sleep(500);
  }
  const settleS = (performance.now() - t0) / 1000;
  rows.push({ attack: name, probe, attackResults: results, rssMb, settleS });
  await sleep(1000);
}

// ---------------------------------------------------------------- the attacks
await phase("none (baseline)", async (until) => {
  while (performance.now() < until) await sleep(100);
});

await phase("(a) PNG bombs: 4 senders x 4 PNGs 2000x2000 RGBA16", (until, results) =>
  senders(
    4,
    until,
    1000,
    () =>
      send(port, "/classify", {
        headers: { "content-type": "multipart/form-data; boundary=bombB" },
        body: bombBody,
        timeoutMs: 15_000,
      }),
    results,
  ),
);

await phase("(b) slow bodies: 64 sockets, 1 byte / 2 s", async (until, results) => {
  const sockets = new Set<Socket>();
  let opened = 0;
  const open = () => {
    if (performance.now() >= until || opened >= 64 * 20) return;
    opened++;
    const s = connect(port, "127.0.0.1");
    sockets.add(s);
    let head = "";
    let counted = false;
    const count = (what: string) => {
      if (!counted) tally(results, what);
      counted = true;
    };
    s.on("connect", () =>
      s.write(
        "POST /classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{",
      ),
    );
    const trickle = setInterval(() => s.writable && s.write(" "), 2000);
    s.on("data", (d) => {
      head += d.toString("latin1");
      const m = /^HTTP\/1\.1 (\d{3})/.exec(head);
      if (m) count(m[1]);
    });
    s.on("error", (e: NodeJS.ErrnoException) => count(e.code ?? "error"));
    s.on("close", () => {
      clearInterval(trickle);
      sockets.delete(s);
      if (performance.now() < until) {
        count("closed without answer");
        open(); // keep 64 open
      }
    });
  };
  for (let i = 0; i < 64; i++) open();
  while (performance.now() < until) await sleep(100);
  const still = sockets.size;
  for (const s of sockets) s.destroy();
  if (still) tally(results, "still waiting at the end", still);
});

await phase("(c) chunked oversize: 4 senders x 45 MiB", (until, results) =>
  senders(
    4,
    until,
    200,
    () =>
      send(port, "/classify", {
        headers: { "content-type": "multipart/form-data; boundary=hugeB" },
        body: hugeBody,
        chunked: true,
        timeoutMs: 15_000,
      }),
    results,
  ),
);

await phase("(d) overload: 200 connections (autocannon)", async (_until, results) => {
  const r = await autocannon({
    url: `http://127.0.0.1:${port}/classify`,
    method: "POST",
    headers: { "content-type": "multipart/form-data; boundary=cannonB" },
    body: cannonBody,
    connections: 200,
    duration: SECONDS,
    timeout: 10,
  });
  for (const [code, s] of Object.entries(r.statusCodeStats ?? {})) tally(results, code, s.count);
  if (r.errors) tally(results, "errors", r.errors);
  if (r.timeouts) tally(results, "timeouts", r.timeouts);
});

// ---------------------------------------------------------------- the report
console.log(
  `\nbench:attack — ${SECONDS} s per attack, server: node dist/src/cli.js serve --threads 1 ${serverArgs.join(" ")}`.trimEnd(),
);
console.log(
  "| attack | healthz p50 / p99 / max ms | valid-client 2xx / total | attack responses by status | server RSS MB | recovery s |",
);
console.log("| --- | --- | --- | --- | --- | --- |");
for (const row of rows) {
  const h = [...row.probe.healthz].sort((a, b) => a - b);
  const hz = `${quantile(h, 0.5).toFixed(1)} / ${quantile(h, 0.99).toFixed(1)} / ${(h.at(-1) ?? NaN).toFixed(1)}${
    row.probe.healthzFailures ? ` (${row.probe.healthzFailures} of ${h.length} failed)` : ""
  }`;
  const ok = [...row.probe.valid.entries()].filter(([k]) => /^2\d\d$/.test(k)).reduce((a, [, n]) => a + n, 0);
  const others = new Map([...row.probe.valid.entries()].filter(([k]) => !/^2\d\d$/.test(k)));
  const validCell = `${ok} / ${row.probe.validTotal}${others.size ? ` (${fmtTally(others)})` : ""}`;
  console.log(
    `| ${row.attack} | ${hz} | ${validCell} | ${fmtTally(row.attackResults)} | ${row.rssMb?.toFixed(0) ?? "?"} | ${row.settleS.toFixed(1)} |`,
  );
}
console.log(`\nload average at end: ${fmtLoad()}`);
await server.stop(15_000);
clearTimeout(watchdog);
process.exit(0);
