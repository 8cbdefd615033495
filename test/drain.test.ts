// SIGTERM under load, against the real server process (--drain-secs 1): 32 clients POST /classify
// on fresh connections without pause; SIGTERM arrives mid-load. /readyz (polled on fresh
// connections, every 25 ms, then every 500 ms once it said 503, as a kubelet would) must answer 503
// while the listener still accepts, before the first ECONNREFUSED. The clients act as a load
// balancer does: they keep sending for LB_REACTION_MS after /readyz said 503, then send no more.
// No request that got a connection may be reset; every answer is 200 or 503 shutting-down; the
// process exits 0 within drain-secs + a few seconds.
import { test } from "node:test";
import assert from "node:assert/strict";
import { encodeImage, mnistLike, multipartBody } from "./helpers/corpus.js";
import { problemOf, send, type SendResult } from "./helpers/raw-http.js";
import { startServerProcess } from "./helpers/server-process.js";
import { Rng } from "../src/util/rng.js";

const DRAIN_SECS = 1;
const CLIENTS = 32;
/** Exit within drain-secs + this. */
const EXIT_SLACK_MS = 5000;
/** The load stops by itself after this, whatever happens. */
const MAX_LOAD_MS = 20_000;

interface Sample {
  t: number;
  r: SendResult;
}

/** How long the "load balancer" keeps sending after /readyz first answered 503. */
const LB_REACTION_MS = 300;

const REFUSED = "ECONNREFUSED";
const isReset = (e?: string) => e !== undefined && e !== REFUSED;

test("SIGTERM under load: readyz 503 while still accepting, no resets, exit 0", async () => {
  const server = await startServerProcess(["--threads", "1", "--drain-secs", String(DRAIN_SECS)]);
  const port = server.port;
  const png = await encodeImage(mnistLike(new Rng(11)), 28, 28, "png");
  const bodies = [
    {
      headers: { "content-type": "application/json" },
      body: Buffer.from(JSON.stringify({ images: [png.toString("base64")] })),
    },
    {
      headers: { "content-type": "multipart/form-data; boundary=drainB" },
      body: multipartBody([{ name: "image", filename: "d.png", type: "image/png", data: png }], "drainB"),
    },
  ];

  const t0 = performance.now();
  const now = () => performance.now() - t0;
  let stop = false;
  let sigAt = Infinity;
  let unreadyAt = Infinity;
  const load: Sample[] = [];
  const readyz: Sample[] = [];

  const exit = server.exited.then((e) => ({ ...e, t: now() }));
  void exit.then(() => (stop = true));
  const hardStop = setTimeout(() => (stop = true), MAX_LOAD_MS);

  const client = async (k: number) => {
    for (let i = 0; !stop && i < 100_000; i++) {
      if (now() > unreadyAt + LB_REACTION_MS) break; // taken out of rotation
      const b = bodies[(k + i) % 2];
      const t = now();
      const r = await send(port, "/classify", { ...b, timeoutMs: 15_000 });
      load.push({ t, r });
      // The listener is closed: this client is done (refused connections are expected then).
      if (r.error === REFUSED && t > sigAt) break;
    }
  };
  const poller = async () => {
    for (let i = 0; !stop && i < 2000; i++) {
      const t = now();
      const r = await send(port, "/readyz", { method: "GET", timeoutMs: 5000 });
      readyz.push({ t, r });
      if (r.error === REFUSED && t > sigAt) break;
      if (r.status === 503 && t > sigAt) unreadyAt = Math.min(unreadyAt, t + r.ms);
      await new Promise((res) => setTimeout(res, unreadyAt < Infinity ? 500 : 25));
    }
  };

  const running = [...Array.from({ length: CLIENTS }, (_, k) => client(k)), poller()];
  await new Promise((r) => setTimeout(r, 1500));
  const okBefore = load.filter((s) => s.r.status === 200).length;
  sigAt = now();
  server.child.kill("SIGTERM");
  const ex = await Promise.race([
    exit,
    new Promise<null>((r) => setTimeout(() => r(null), DRAIN_SECS * 1000 + EXIT_SLACK_MS + 5000)),
  ]);
  stop = true;
  await Promise.all(running);
  clearTimeout(hardStop);
  if (ex === null) await server.stop(1000);

  // ---- the record
  const after = (s: Sample) => s.t >= sigAt;
  const firstRefused = Math.min(
    ...[...load, ...readyz].filter((s) => after(s) && s.r.error === REFUSED).map((s) => s.t),
  );
  const ready503 = readyz.filter((s) => after(s) && s.r.status === 503);
  const resets = [...load, ...readyz].filter((s) => isReset(s.r.error));
  const statuses: Record<string, number> = {};
  for (const s of load) {
    const p = problemOf(s.r);
    const key = s.r.error ?? `${s.r.status}${p ? " " + p.type.replace(/^.*#problem-/, "") : ""}`;
    statuses[key] = (statuses[key] ?? 0) + 1;
  }
  const duringDrain = load.filter((s) => after(s) && s.t < firstRefused);
  const summary = [
    `load: ${load.length} requests (${okBefore} x 200 before SIGTERM), by outcome ${JSON.stringify(statuses)}`,
    `readyz: ${readyz.length} polls; after SIGTERM: ${readyz
      .filter(after)
      .slice(0, 12)
      .map((s) => `${Math.round(s.t - sigAt)}ms:${s.r.status ?? s.r.error}`)
      .join(" ")}`,
    `first ECONNREFUSED ${Number.isFinite(firstRefused) ? Math.round(firstRefused - sigAt) + " ms" : "never"} after SIGTERM;` +
      ` requests started in between: ${duringDrain.length} (${duringDrain.filter((s) => s.r.status === 200).length} x 200)`,
    `exit: ${ex ? `code ${ex.code} signal ${ex.signal} ${Math.round(ex.t - sigAt)} ms after SIGTERM` : "none in time (killed)"}`,
    `resets: ${resets.length}${resets
      .slice(0, 8)
      .map(
        (s) =>
          `; ${s.r.error} (started ${Math.round(s.t - sigAt)} ms, ended ${Math.round(s.t + s.r.ms - sigAt)} ms after SIGTERM)`,
      )
      .join("")}`,
  ].join("\n");
  console.log(summary);
  const log = `\n${summary}\n--- server output (tail)\n${server.output().slice(-3000)}`;

  assert.ok(okBefore > 0, `no successful request before SIGTERM${log}`);
  assert.ok(ready503.length > 0, `/readyz never answered 503 after SIGTERM${log}`);
  assert.ok(
    ready503[0].t < firstRefused,
    `/readyz answered 503 only after the listener closed (first 503 at ${ready503[0]?.t}, first refusal at ${firstRefused})${log}`,
  );
  for (const s of ready503)
    assert.ok(problemOf(s.r)?.type.endsWith("shutting-down"), `readyz 503 body${log}`);
  assert.equal(resets.length, 0, `connections reset or hung up${log}`);
  const odd = load.filter(
    (s) =>
      s.r.status !== undefined &&
      s.r.status !== 200 &&
      !(s.r.status === 503 && problemOf(s.r)?.type.endsWith("shutting-down")),
  );
  assert.equal(odd.length, 0, `answers other than 200 / 503 shutting-down${log}`);
  assert.ok(
    duringDrain.some((s) => s.r.status === 200),
    `no request started during the drain window was served 200 ("requests still served normally")${log}`,
  );
  assert.ok(
    ex !== null,
    `the process did not exit within ${DRAIN_SECS} s + ${EXIT_SLACK_MS + 5000} ms${log}`,
  );
  assert.equal(ex!.code, 0, `exit code${log}`);
  assert.ok(
    ex!.t - sigAt < DRAIN_SECS * 1000 + EXIT_SLACK_MS,
    `exit took ${Math.round(ex!.t - sigAt)} ms${log}`,
  );
});
