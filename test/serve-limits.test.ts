import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import request from "supertest";
import { createApp, type ServeApp } from "../src/serve/app.js";
import { FakeEngine } from "./helpers/fake-engine.js";
import { ROOT } from "./helpers/paths.js";

const body = { pixels: [Array(64).fill(0.5)] };

async function listen(app: ServeApp): Promise<{ server: Server; url: string }> {
  const server = createServer(app).listen(0, "127.0.0.1");
  await new Promise((r) => server.once("listening", r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const post = (url: string, path = "/classify") =>
  fetch(url + path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });

/** Polls `cond` every 10 ms; fails after `timeoutMs` (generous: the suite runs on busy machines). */
async function until(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), "condition not reached");
}

test("/readyz and inference answer 503 not-ready until the warm-up inference succeeded", async () => {
  const engine = new FakeEngine();
  engine.holdWarmUp = true;
  const app = createApp(engine, { log: () => {} });
  const r = await request(app).get("/readyz");
  assert.equal(r.status, 503);
  assert.equal(r.body.type, "/docs#problem-not-ready");
  assert.equal((await request(app).post("/classify").send(body)).status, 503);
  assert.equal((await request(app).get("/healthz")).status, 200, "alive while warming up");
  await until(() => engine.calls.some((c) => c.op === "classify"));
  engine.releaseWarmUp();
  assert.equal(await app.ready, true);
  await request(app).get("/readyz").expect(200);
  await request(app).post("/classify").send(body).expect(200);
});

test("requests over the concurrency limit get 429; the others finish; then it answers again", async () => {
  const engine = new FakeEngine();
  engine.delayMs = 300;
  const app = createApp(engine, { limits: { maxConcurrent: 2 }, log: () => {} });
  await app.ready;
  const { server, url } = await listen(app);
  try {
    const held = [post(url), post(url)];
    await until(() => app.inflight() === 2);
    const r = await post(url);
    assert.equal(r.status, 429);
    assert.equal(r.headers.get("content-type"), "application/problem+json; charset=utf-8");
    assert.equal(r.headers.get("retry-after"), "1");
    assert.equal(((await r.json()) as { type: string }).type, "/docs#problem-too-many-requests");
    for (const h of held) assert.equal((await h).status, 200);
    await until(() => app.inflight() === 0);
    assert.equal((await post(url)).status, 200);
  } finally {
    server.close();
  }
});

test("a request over the timeout gets 503 timeout; queued work is dropped; the server keeps answering", async () => {
  const engine = new FakeEngine();
  const app = createApp(engine, { limits: { timeoutMs: 150 }, log: () => {} });
  await app.ready;
  engine.delayMs = 600;
  const t0 = Date.now();
  const r = await request(app).post("/classify").send(body);
  assert.equal(r.status, 503);
  assert.equal(r.body.type, "/docs#problem-timeout");
  assert.ok(Date.now() - t0 < 550, "answered at the timeout, not when the engine finished");
  engine.delayMs = 0;
  await new Promise((res) => setTimeout(res, 600));
  await request(app).post("/classify").send(body).expect(200);
});

test("concurrent invariant embeddings are coalesced into one engine call", async () => {
  const engine = new FakeEngine();
  const app = createApp(engine, { log: () => {} });
  await app.ready;
  engine.delayMs = 100;
  const { server, url } = await listen(app);
  try {
    const rs = await Promise.all([post(url), post(url), post(url), post(url), post(url)]);
    for (const r of rs) assert.equal(r.status, 200);
    const inv = engine.calls.filter((c) => c.op === "invariant");
    assert.ok(inv.length < 5 && inv.some((c) => c.n > 1), JSON.stringify(inv));
    const m = await (await fetch(url + "/metrics")).text();
    assert.match(
      m,
      /equivae_inference_batch_size_bucket\{le="4",op="invariant",model="fake",version="\w+"\} [1-9]/,
    );
  } finally {
    server.close();
  }
});

test("SIGTERM drains an in-flight request, then the process exits 0", async () => {
  const child = spawn(process.execPath, [join(ROOT, "dist/test/helpers/slow-server.js")], {
    env: { ...process.env, FAKE_DELAY_MS: "2000" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  try {
    // A process start on a loaded machine can take seconds; a server that never prints its URL
    // fails here, and `finally` stops it (a child left running would keep this file alive).
    await until(() => /URL (\S+)/.test(out), 60_000);
    const url = /URL (\S+)/.exec(out)![1];
    const inflight = post(url);
    // SIGTERM once the server holds the request (the engine takes 2 s to answer it).
    let held = false;
    for (const deadline = Date.now() + 30_000; !held && Date.now() < deadline;) {
      const m = await (await fetch(url + "/metrics")).text();
      held = /^equivae_requests_in_flight(\{[^}]*\})? 1$/m.test(m);
      if (!held) await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(held, `the request never showed as in flight in /metrics:\n${out}`);
    child.kill("SIGTERM");
    const r = await inflight;
    assert.equal(r.status, 200, out);
    assert.ok(((await r.json()) as { predictions: unknown[] }).predictions.length === 1);
    assert.equal(await exited, 0, out);
    assert.match(out, /SIGTERM: draining 1 in-flight/);
    await assert.rejects(fetch(url + "/healthz"), "no longer accepting");
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
});

test("large images are admitted by the in-flight pixel budget; small requests are never starved by it", async () => {
  const engine = new FakeEngine();
  engine.delayMs = 300;
  const app = createApp(engine, { limits: { maxInflightPixels: 100_000 }, log: () => {} });
  await app.ready;
  const { server, url } = await listen(app);
  const big = { pixels: [Array.from({ length: 300 }, () => Array(300).fill(0.5))] }; // 90,000 pixels
  const send = (b: unknown) =>
    fetch(url + "/classify", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(b),
    });
  try {
    const first = send(big);
    await until(() => app.inflight() === 1);
    const second = await send(big);
    assert.equal(second.status, 429);
    const p = (await second.json()) as { type: string; detail: string };
    assert.equal(p.type, "/docs#problem-too-many-requests");
    assert.match(p.detail, /in-flight budget of 100000/);
    // An 8x8 request is admitted while the budget is spent.
    assert.equal((await send(body)).status, 200);
    assert.equal((await first).status, 200);
    await until(() => app.inflight() === 0);
    assert.equal((await send(big)).status, 200, "the budget is given back");
  } finally {
    server.close();
  }
});

test("a body that does not arrive within the body timeout gets 408 and holds no slot meanwhile", async () => {
  const app = createApp(new FakeEngine(), {
    limits: { bodyTimeoutMs: 200, maxConcurrent: 1 },
    log: () => {},
  });
  await app.ready;
  const { server, url } = await listen(app);
  const { port } = new URL(url);
  const net = await import("node:net");
  try {
    // A client that sends its headers and 2 of 20 bytes, then nothing.
    const slow = net.connect(Number(port), "127.0.0.1");
    const answer = new Promise<string>((resolve) => {
      let text = "";
      slow.on("data", (d) => (text += d.toString()));
      slow.on("close", () => resolve(text));
      slow.on("error", () => resolve(text));
    });
    slow.write(
      'POST /classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 20\r\n\r\n{"',
    );
    // The one concurrency slot is free for a valid client while the slow body trickles.
    assert.equal((await post(url)).status, 200);
    const text = await answer;
    assert.match(text, /^HTTP\/1\.1 408 /);
    assert.match(text, /problem-body-timeout/);
  } finally {
    server.close();
  }
});
