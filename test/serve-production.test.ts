// Issue #15 over HTTP: API keys (file, environment, rotation by reload), CORS, the request log and
// request ids, the security headers, and the flags that configure them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import request from "supertest";
import { createApp, type AppOptions } from "../src/serve/app.js";
import { parseServeConfig } from "../src/serve/command.js";
import { createLogger } from "../src/serve/request-log.js";
import { startServer } from "../src/serve/server.js";
import { InputError } from "../src/util/errors.js";
import { FakeEngine } from "./helpers/fake-engine.js";
import { tempDir } from "./helpers/paths.js";

const body = { pixels: [Array(64).fill(0.5)] };
const KEY_A = "key-a-0123456789abcdef";
const KEY_B = "key-b-fedcba9876543210";
const KEY_C = "key-c-rotated-in-later";

async function ready(opts: AppOptions = {}) {
  const app = createApp(new FakeEngine(), { log: () => {}, ...opts });
  assert.equal(await app.ready, true);
  return app;
}

function keyFile(...keys: string[]): string {
  const f = join(tempDir("equivae-keys-"), "keys.txt");
  writeFileSync(f, `# API keys, one a line\n\n${keys.join("\n")}\n`);
  return f;
}

/** A logger whose JSON lines land in `lines`. */
function capture(level: "info" | "warn" = "info") {
  const lines: Array<Record<string, any>> = [];
  const logger = createLogger({
    level,
    destination: { write: (s: string) => void lines.push(JSON.parse(s)) },
  });
  return { lines, logger };
}

const bearer = (k: string) => ({ Authorization: `Bearer ${k}` });

function assertProblem(r: request.Response, status: number, kind: string): Record<string, any> {
  assert.equal(r.status, status, r.text);
  assert.match(r.headers["content-type"], /^application\/problem\+json/);
  const p = JSON.parse(r.text);
  assert.equal(p.type, `/docs#problem-${kind}`);
  assert.equal(p.request_id, r.headers["x-request-id"], "request_id is the X-Request-Id");
  assert.match(p.request_id, /^[0-9a-f-]{36}$/);
  return p;
}

test("API keys: 401 without a key and with a wrong one; 200 with a key from the file and one from EQUIVAE_API_KEYS", async () => {
  const cfg = parseServeConfig(["--api-key-file", keyFile(KEY_A)], { EQUIVAE_API_KEYS: ` ${KEY_B} ,` });
  assert.ok(cfg !== "help");
  assert.deepEqual(cfg.apiKeys, [` ${KEY_B} `]);
  const app = await ready({ apiKeyFile: cfg.apiKeyFile, apiKeys: cfg.apiKeys });
  assert.equal(app.apiKeyCount(), 2);

  const none = await request(app).post("/classify").send(body);
  assertProblem(none, 401, "unauthorized");
  assert.equal(none.headers["www-authenticate"], 'Bearer realm="equivae"');
  const wrong = await request(app).post("/v1/classify").set(bearer("not-a-key")).send(body);
  assertProblem(wrong, 401, "unauthorized");
  assert.equal(wrong.headers["www-authenticate"], 'Bearer realm="equivae", error="invalid_token"');
  const basic = await request(app).post("/classify").set("Authorization", `Basic ${KEY_A}`).send(body);
  assertProblem(basic, 401, "unauthorized");
  assert.doesNotMatch(basic.text + wrong.text, /key-a|key-b/, "no key in an answer");

  for (const k of [KEY_A, KEY_B]) {
    const r = await request(app).post("/classify").set(bearer(k)).send(body);
    assert.equal(r.status, 200, r.text);
    assert.equal((await request(app).get("/v1/models").set(bearer(k))).status, 200);
  }
  // Every other path is keyed, routes added later (and unknown ones) included.
  for (const path of [
    "/models",
    "/v1/models",
    "/v1/models/fake",
    "/v1/models/fake/load",
    "/nope",
    "/HEALTHZ2",
  ])
    assertProblem(await request(app).get(path), 401, "unauthorized");
  assertProblem(await request(app).post("/v1/models/fake/unload"), 401, "unauthorized");
  // Probes, the docs, the spec and (by default) /metrics stay open, with or without /v1.
  for (const path of [
    "/healthz",
    "/readyz",
    "/docs",
    "/openapi.yaml",
    "/metrics",
    "/v1/healthz",
    "/v1/readyz/",
  ])
    assert.equal((await request(app).get(path)).status, 200, path);
  assert.notEqual((await request(app).get("/")).status, 401, "/ is open");
});

test("API keys: reload picks up a changed key file; a bad or empty file keeps the old keys", async () => {
  const file = keyFile(KEY_A);
  const app = await ready({ apiKeyFile: file, apiKeys: [KEY_B] });
  const status = async (k: string) => (await request(app).post("/classify").set(bearer(k)).send(body)).status;
  assert.equal(await status(KEY_A), 200);
  assert.equal(await status(KEY_C), 401);
  writeFileSync(file, `${KEY_C}\n# ${KEY_A} retired\n`);
  assert.equal(app.reloadKeys(), 2);
  assert.equal(await status(KEY_A), 401, "the retired key is refused");
  assert.equal(await status(KEY_C), 200, "the new key is accepted");
  assert.equal(await status(KEY_B), 200, "the environment's key stays");
  writeFileSync(file, "a key with spaces\n");
  assert.throws(
    () => app.reloadKeys(),
    (e: unknown) => e instanceof InputError && /line 1/.test(e.message) && !/spaces/.test(e.message),
  );
  assert.equal(await status(KEY_C), 200, "a broken file keeps the keys in force");

  // A file alone that empties would open the server: refused, the old keys stay.
  const only = keyFile(KEY_A);
  const app2 = await ready({ apiKeyFile: only });
  writeFileSync(only, "# nothing\n");
  assert.throws(() => app2.reloadKeys(), /holds no key/);
  assert.equal((await request(app2).post("/classify").send(body)).status, 401);
  assert.throws(
    () => createApp(new FakeEngine(), { apiKeyFile: join(tempDir("equivae-"), "missing") }),
    /cannot read/,
  );
});

test("/metrics is open by default and keyed with --metrics-auth key; no key configured: all open", async () => {
  const keyed = await ready({ apiKeys: [KEY_A], metricsAuth: "key" });
  assertProblem(await request(keyed).get("/metrics"), 401, "unauthorized");
  assertProblem(await request(keyed).get("/v1/metrics"), 401, "unauthorized");
  assert.equal((await request(keyed).get("/metrics").set(bearer(KEY_A))).status, 200);
  assert.equal((await request(keyed).get("/healthz")).status, 200);
  const open = await ready();
  assert.equal(open.apiKeyCount(), 0);
  assert.equal((await request(open).post("/classify").send(body)).status, 200);
  assert.equal((await request(open).get("/v1/models")).status, 200);
});

test("CORS: a preflight from an allowed origin gets 204 and the allow headers; another origin gets 403 and none", async () => {
  const app = await ready({ apiKeys: [KEY_A], corsOrigins: ["https://app.example.com"] });
  const pre = await request(app)
    .options("/v1/classify")
    .set("Origin", "https://app.example.com")
    .set("Access-Control-Request-Method", "POST")
    .set("Access-Control-Request-Headers", "authorization, content-type");
  assert.equal(pre.status, 204, "answered before authentication");
  assert.equal(pre.headers["access-control-allow-origin"], "https://app.example.com");
  assert.equal(pre.headers["access-control-allow-methods"], "GET, POST, OPTIONS");
  assert.match(
    pre.headers["access-control-allow-headers"],
    /Authorization.*Content-Type.*Content-Encoding.*X-Request-Id/,
  );
  assert.equal(pre.headers["access-control-max-age"], "600");
  assert.match(pre.headers.vary, /Origin/);

  const refused = await request(app)
    .options("/v1/classify")
    .set("Origin", "https://evil.example.com")
    .set("Access-Control-Request-Method", "POST");
  assertProblem(refused, 403, "cors-refused");
  assert.equal(refused.headers["access-control-allow-origin"], undefined);
  assert.equal(refused.headers["access-control-allow-methods"], undefined);

  // The call itself: the origin, the exposed headers; the 401 is readable by the page too.
  const call = await request(app)
    .post("/classify")
    .set("Origin", "https://app.example.com")
    .set(bearer(KEY_A))
    .send(body);
  assert.equal(call.status, 200);
  assert.equal(call.headers["access-control-allow-origin"], "https://app.example.com");
  assert.equal(call.headers["access-control-expose-headers"], "X-Model-Version, X-Request-Id, Retry-After");
  assert.match(call.headers.vary, /Origin/);
  const denied = await request(app).post("/classify").set("Origin", "https://app.example.com").send(body);
  assert.equal(denied.status, 401);
  assert.equal(denied.headers["access-control-allow-origin"], "https://app.example.com");
  const other = await request(app)
    .post("/classify")
    .set("Origin", "https://evil.example.com")
    .set(bearer(KEY_A))
    .send(body);
  assert.equal(other.status, 200, "served; the browser refuses to show it");
  assert.equal(other.headers["access-control-allow-origin"], undefined);

  const star = await ready({ corsOrigins: ["*"] });
  const s = await request(star)
    .options("/classify")
    .set("Origin", "https://x.example")
    .set("Access-Control-Request-Method", "POST");
  assert.equal(s.status, 204);
  assert.equal(s.headers["access-control-allow-origin"], "*");

  // No origin configured: no CORS header at all.
  const plain = await ready();
  const r = await request(plain).post("/classify").set("Origin", "https://app.example.com").send(body);
  assert.equal(r.headers["access-control-allow-origin"], undefined);
  assert.equal(r.headers.vary, undefined);
});

test("one JSON log line per request, with the request id echoed; a 500 is logged at error with its stack", async () => {
  const { lines, logger } = capture();
  const engine = new FakeEngine();
  const app = createApp(engine, {
    log: () => assert.fail("errors go to the request log"),
    logger,
    apiKeys: [KEY_A],
  });
  assert.equal(await app.ready, true);

  const ok = await request(app)
    .post("/v1/classify")
    .set(bearer(KEY_A))
    .set("X-Request-Id", "client-id.1:a_b-c")
    .send(body);
  assert.equal(ok.status, 200);
  assert.equal(ok.headers["x-request-id"], "client-id.1:a_b-c");
  const line = lines.at(-1)!;
  assert.deepEqual(Object.keys(line), [
    "level",
    "time",
    "request_id",
    "method",
    "path",
    "route",
    "model",
    "version",
    "status",
    "images",
    "bytes_in",
    "bytes_out",
    "decode_ms",
    "queue_ms",
    "infer_ms",
    "work_ms",
    "total_ms",
    "client",
    "key",
    "msg",
  ]);
  assert.equal(line.level, "info");
  assert.match(line.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(line.msg, "request");
  assert.equal(line.request_id, "client-id.1:a_b-c");
  assert.equal(line.method, "POST");
  assert.equal(line.path, "/v1/classify");
  assert.equal(line.route, "/classify");
  assert.equal(line.status, 200);
  assert.equal(line.images, 1);
  assert.equal(line.bytes_in, JSON.stringify(body).length);
  assert.equal(line.bytes_out, Number(ok.headers["content-length"]));
  for (const f of ["decode_ms", "queue_ms", "infer_ms", "work_ms", "total_ms"])
    assert.ok(typeof line[f] === "number" && line[f] >= 0, `${f}: ${line[f]}`);
  assert.ok(line.total_ms >= line.work_ms);
  assert.match(line.client, /127\.0\.0\.1/);
  assert.equal(line.key, "env:1");
  assert.doesNotMatch(JSON.stringify(lines), new RegExp(KEY_A), "a key never reaches the log");

  // An id that is not a sane token is replaced; a 401 is logged at info, without a stack.
  const bad = await request(app).get("/v1/models").set("X-Request-Id", "has spaces and \u00e9");
  assert.equal(bad.status, 401);
  assert.match(bad.headers["x-request-id"], /^[0-9a-f-]{36}$/);
  assert.equal(JSON.parse(bad.text).request_id, bad.headers["x-request-id"]);
  const l401 = lines.at(-1)!;
  assert.equal(l401.status, 401);
  assert.equal(l401.level, "info");
  assert.equal(l401.err, undefined);
  assert.equal(l401.bytes_in, 0);
  assert.equal(l401.request_id, bad.headers["x-request-id"]);
  const long = await request(app).get("/healthz").set("X-Request-Id", "x".repeat(129));
  assert.notEqual(long.headers["x-request-id"], "x".repeat(129));

  engine.embedInvariant = async () => {
    throw new Error("kaboom in the engine");
  };
  const boom = await request(app).post("/embed/invariant").set(bearer(KEY_A)).send(body);
  const p = assertProblem(boom, 500, "internal");
  assert.doesNotMatch(boom.text, /kaboom|\.js:\d+/, "no cause or stack in the answer");
  const l500 = lines.at(-1)!;
  assert.equal(l500.level, "error");
  assert.equal(l500.status, 500);
  assert.equal(l500.request_id, p.request_id);
  assert.equal(l500.err.message, "kaboom in the engine");
  assert.match(l500.err.stack, /kaboom in the engine\n\s+at /);
  assert.equal(lines.length, 4, "one line per request");
});

test("--log-format pretty writes one readable line per request", async () => {
  let out = "";
  const logger = createLogger({
    format: "pretty",
    destination: new Writable({
      write(c, _e, cb) {
        out += String(c);
        cb();
      },
    }),
  });
  const app = await ready({ logger });
  await request(app).post("/classify").set("X-Request-Id", "r-1").send(body).expect(200);
  const lines = out.trim().split("\n");
  assert.equal(lines.length, 1, out);
  assert.match(lines[0], /INFO.*POST \/classify 200 [\d.]+ ms.*"request_id":"r-1"/);
});

test("security headers: nosniff and no-store everywhere, a CSP on every answer, the docs page's by its style's hash", async () => {
  const app = await ready({ apiKeys: [KEY_A] });
  const answers = [
    await request(app).get("/healthz"),
    await request(app).get("/metrics"),
    await request(app).post("/classify").set(bearer(KEY_A)).send(body),
    await request(app).post("/classify").send(body), // 401 problem
    await request(app)
      .post("/generate")
      .set(bearer(KEY_A))
      .set("Accept", "image/png")
      .send({ class: "a", seed: 1 }),
  ];
  assert.equal(answers[4].headers["content-type"], "image/png");
  for (const r of answers) {
    assert.equal(r.headers["x-content-type-options"], "nosniff");
    assert.equal(r.headers["cache-control"], "no-store");
    assert.match(r.headers["content-security-policy"], /^default-src 'none'; frame-ancestors 'none'/);
  }
  const docs = await request(app).get("/docs").expect(200);
  assert.equal(docs.headers["x-content-type-options"], "nosniff");
  const csp = docs.headers["content-security-policy"];
  assert.match(
    csp,
    /^default-src 'none'; style-src 'sha256-[A-Za-z0-9+/]+=*'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'$/,
  );
  // The page renders under its policy: each inline style is allowed by hash; nothing else is loaded.
  const styles = [...docs.text.matchAll(/<style>([\s\S]*?)<\/style>/g)].map((m) => m[1]);
  assert.equal(styles.length, 1);
  for (const s of styles)
    assert.ok(
      csp.includes(`'sha256-${createHash("sha256").update(s).digest("base64")}'`),
      "the style's hash",
    );
  assert.doesNotMatch(docs.text, /<script|<img|<link|<iframe|<form|\sstyle=|\son[a-z]+=/i);
  assert.equal((await request(app).get("/v1/docs")).headers["content-security-policy"], csp);
});

test("the new flags and their environment twins", () => {
  const d = parseServeConfig([], {});
  assert.ok(d !== "help");
  assert.equal(d.apiKeyFile, undefined);
  assert.deepEqual(d.apiKeys, []);
  assert.equal(d.metricsAuth, "open");
  assert.deepEqual(d.corsOrigins, []);
  assert.equal(d.logLevel, "info");
  assert.equal(d.logFormat, "json");
  const env = {
    EQUIVAE_API_KEY_FILE: "keys.txt",
    EQUIVAE_API_KEYS: "k1,k2",
    EQUIVAE_METRICS_AUTH: "key",
    EQUIVAE_CORS_ORIGINS: "https://a.example, https://B.example:8443",
    EQUIVAE_LOG_LEVEL: "warn",
    EQUIVAE_LOG_FORMAT: "pretty",
  };
  const e = parseServeConfig([], env);
  assert.ok(e !== "help");
  assert.match(e.apiKeyFile!, /\/keys\.txt$/);
  assert.deepEqual(e.apiKeys, ["k1", "k2"]);
  assert.equal(e.metricsAuth, "key");
  assert.deepEqual(e.corsOrigins, ["https://a.example", "https://b.example:8443"]);
  assert.equal(e.logLevel, "warn");
  assert.equal(e.logFormat, "pretty");
  const f = parseServeConfig(
    [
      "--cors-origin",
      "http://localhost:3000",
      "--cors-origin",
      "https://c.example,https://d.example",
      "--log-level",
      "silent",
      "--metrics-auth",
      "open",
    ],
    env,
  );
  assert.ok(f !== "help");
  assert.deepEqual(f.corsOrigins, ["http://localhost:3000", "https://c.example", "https://d.example"]);
  assert.equal(f.logLevel, "silent");
  assert.equal(f.metricsAuth, "open");
  const bad: Array<[string[], Record<string, string>, RegExp]> = [
    [["--metrics-auth", "closed"], {}, /--metrics-auth \(\$EQUIVAE_METRICS_AUTH\) must be open or key/],
    [[], { EQUIVAE_LOG_LEVEL: "loud" }, /--log-level \(\$EQUIVAE_LOG_LEVEL\) must be one of/],
    [["--log-format", "xml"], {}, /--log-format/],
    [["--cors-origin", "https://a.example/path"], {}, /--cors-origin .* no path/],
    [[], { EQUIVAE_CORS_ORIGINS: "a.example" }, /scheme:\/\/host/],
  ];
  for (const [argv, en, re] of bad)
    assert.throws(
      () => parseServeConfig(argv, en),
      (x: unknown) => x instanceof InputError && re.test(x.message),
    );
});

test("startServer warns when no key is configured and it is bound beyond loopback", async () => {
  const run = async (host: string, apiKeys: string[]) => {
    const lines: string[] = [];
    const srv = await startServer(new FakeEngine(), {
      port: 0,
      host,
      handleSignals: false,
      info: (m) => lines.push(m),
      log: () => {},
      apiKeys,
    });
    await srv.close(false);
    return lines.filter((l) => l.startsWith("WARNING")).join("\n");
  };
  assert.match(await run("0.0.0.0", []), /WARNING: no API key configured and bound to 0\.0\.0\.0/);
  assert.equal(await run("0.0.0.0", [KEY_A]), "");
  assert.equal(await run("127.0.0.1", []), "");
});

test("the demo page: /, its script and style are open with keys configured; the page's CSP allows only its own assets", async () => {
  const app = await ready({ apiKeys: [KEY_A] });
  const page = await request(app).get("/").expect(200);
  assert.equal(
    page.headers["content-security-policy"],
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; " +
      "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  );
  assert.equal(page.headers["x-content-type-options"], "nosniff");
  // Nothing inline for the policy to block: no inline script, style or event handler.
  assert.doesNotMatch(page.text, /<script>|<script(?![^>]*\ssrc=)|<style|\sstyle=|\son[a-z]+=/i);
  for (const path of ["/demo/demo.js", "/demo/demo.css"]) {
    const r = await request(app).get(path).expect(200);
    assert.match(r.headers["content-security-policy"], /^default-src 'none'; frame-ancestors 'none'/);
    assert.equal(r.headers["x-content-type-options"], "nosniff");
  }
  // The page asks for a key; the API it calls still needs one.
  assertProblem(await request(app).get("/v1/models"), 401, "unauthorized");
  assertProblem(await request(app).get("/demo/other.js"), 401, "unauthorized");
});
