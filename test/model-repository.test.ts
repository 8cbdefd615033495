// The model repository (#15): two models and two versions of one served from a folder, per-model
// and default routes, /v1/models without host paths, a reload under steady load that fails no
// request and switches X-Model-Version, a corrupt version refused while the old keeps serving,
// unload/load, and SIGHUP on the real process.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { batchPixels, range } from "../src/data/dataset.js";
import { loadIdxDataset } from "../src/data/mnist.js";
import { encodePng } from "../src/imaging/index.js";
import { loadEngine } from "../src/inference/index.js";
import { createRepositoryApp, type ServeApp } from "../src/serve/app.js";
import { DEFAULT_MODEL_DIR } from "../src/serve/config.js";
import { startServerProcess } from "./helpers/server-process.js";
import { MNIST_DIR, tempDir } from "./helpers/paths.js";

const data = loadIdxDataset("mnist", { dataDir: MNIST_DIR, trainSize: 10, valSize: 10, withTest: true });
const X = batchPixels(data.test!, range(0, 4));
const png = encodePng(X.subarray(0, 784), 28, 28, 1);

let root: string;
let app: ServeApp;
let server: Server;
let url: string;

/** A copy of the shipped checkpoint as `root/<model>/<version>` (or `root/<model>` without a version). */
function addVersion(model: string, version?: string): string {
  const dir = version === undefined ? join(root, model) : join(root, model, version);
  mkdirSync(dir, { recursive: true });
  cpSync(DEFAULT_MODEL_DIR, dir, { recursive: true });
  return dir;
}

const classify = (path = "/v1/classify") => {
  const form = new FormData();
  form.append("image", new Blob([png], { type: "image/png" }), "digit.png");
  return fetch(url + path, { method: "POST", body: form });
};

before(async () => {
  root = tempDir("equivae-repo-");
  addVersion("digits", "1");
  addVersion("digits", "2");
  addVersion("other");
  mkdirSync(join(root, ".hidden")); // not a model id
  app = createRepositoryApp(
    { kind: "repository", root, load: (dir) => loadEngine(dir, { engine: "onnx", threads: 1 }) },
    { log: () => {} },
  );
  assert.equal(await app.ready, true);
  server = createServer(app).listen(0, "127.0.0.1");
  await new Promise((r) => server.once("listening", r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server?.close();
  await app?.models.close();
});

test("two models, the highest version of each, listed without host paths", async () => {
  const r = await fetch(url + "/v1/models");
  const text = await r.text();
  const body = JSON.parse(text);
  assert.equal(body.default_model, "digits");
  assert.deepEqual(
    body.models.map((m: { id: string; state: string; version: string; default: boolean }) => [
      m.id,
      m.state,
      m.default,
    ]),
    [
      ["digits", "ready", true],
      ["other", "ready", false],
    ],
  );
  assert.equal(body.models[0].version, "2");
  assert.match(body.models[1].version, /^[0-9a-f]{12}$/);
  assert.ok(!text.includes(root) && !text.includes(DEFAULT_MODEL_DIR), "no host path in /v1/models");
  assert.equal(body.models[0].classes.length, 10);
});

test("per-model routes, the default routes, per-model readiness, and an unknown model", async () => {
  const d = await classify("/classify");
  assert.equal(d.status, 200);
  assert.equal(d.headers.get("x-model-version"), "2");
  const o = await classify("/v1/models/other/classify");
  assert.equal(o.status, 200);
  assert.match(o.headers.get("x-model-version")!, /^[0-9a-f]{12}$/);
  type Classified = { predictions: Array<{ label: number }> };
  const [a, b] = [(await d.json()) as Classified, (await o.json()) as Classified];
  assert.deepEqual(a.predictions[0].label, b.predictions[0].label);
  assert.equal(data.test!.labels[0], a.predictions[0].label);
  const ready = await fetch(url + "/v1/models/digits/ready");
  assert.equal(ready.status, 200);
  assert.deepEqual(await ready.json(), { status: "ready", version: "2" });
  const unknown = await classify("/v1/models/nope/classify");
  assert.equal(unknown.status, 404);
  assert.equal(((await unknown.json()) as { type: string }).type, "/docs#problem-unknown-model");
  assert.equal((await fetch(url + "/v1/models/nope")).status, 404);
});

test("a new version loaded under steady load: no request fails, and X-Model-Version switches", async () => {
  let stop = false;
  const seen: Array<{ status: number; version: string | null }> = [];
  const client = async () => {
    for (let i = 0; !stop && i < 10_000; i++) {
      const r = await classify("/v1/models/digits/classify");
      await r.arrayBuffer();
      seen.push({ status: r.status, version: r.headers.get("x-model-version") });
    }
  };
  const clients = Array.from({ length: 8 }, client);
  await new Promise((r) => setTimeout(r, 300));
  addVersion("digits", "3");
  const load = await fetch(url + "/v1/models/digits/load", { method: "POST" });
  assert.equal(load.status, 200);
  assert.deepEqual(await load.json(), { id: "digits", state: "ready", version: "3" });
  const switchedAt = seen.length;
  await new Promise((r) => setTimeout(r, 300));
  stop = true;
  await Promise.all(clients);
  assert.ok(seen.length > 20, `only ${seen.length} requests`);
  assert.deepEqual(
    seen.filter((s) => s.status !== 200),
    [],
    "every request during the reload succeeded",
  );
  assert.ok(seen.some((s) => s.version === "2"));
  assert.ok(seen.some((s) => s.version === "3"));
  // Requests that started after the swap are served by the new version only (8 may have been in flight).
  assert.ok(seen.slice(switchedAt + 8).every((s) => s.version === "3"));
});

test("a corrupt version is refused: the previous one keeps serving; the failure is shown and counted", async () => {
  const dir = addVersion("digits", "4");
  writeFileSync(join(dir, "weights.bin"), Buffer.alloc(16));
  const r = await fetch(url + "/v1/models/digits/load", { method: "POST" });
  assert.equal(r.status, 422);
  const p = (await r.json()) as { type: string; detail: string };
  assert.equal(p.type, "/docs#problem-model-load-failed");
  assert.match(p.detail, /weights\.bin/);
  const m = (await (await fetch(url + "/v1/models/digits")).json()) as {
    state: string;
    version: string;
    failure: { version: string; reason: string };
  };
  assert.equal(m.state, "ready");
  assert.equal(m.version, "3");
  assert.equal(m.failure.version, "4");
  assert.match(m.failure.reason, /sha256|weights\.bin/);
  const c = await classify("/classify");
  assert.equal(c.status, 200);
  assert.equal(c.headers.get("x-model-version"), "3");
  const metrics = await (await fetch(url + "/metrics")).text();
  assert.match(metrics, /equivae_model_loads_total\{model="digits",result="failed"\} 1/);
});

test("unload stops serving a model (503), load brings it back", async () => {
  assert.equal((await fetch(url + "/v1/models/other/unload", { method: "POST" })).status, 200);
  const r = await classify("/v1/models/other/classify");
  assert.equal(r.status, 503);
  assert.equal(((await r.json()) as { type: string }).type, "/docs#problem-not-ready");
  assert.equal((await fetch(url + "/v1/models/other/ready")).status, 503);
  const listed = (await (await fetch(url + "/v1/models")).json()) as {
    models: Array<{ id: string; state: string }>;
  };
  assert.equal(listed.models.find((m) => m.id === "other")!.state, "unloaded");
  assert.equal((await fetch(url + "/v1/models/other/load", { method: "POST" })).status, 200);
  assert.equal((await classify("/v1/models/other/classify")).status, 200);
});

test("SIGHUP reloads the real server's repository and its API keys, and does not kill it", async () => {
  const repo = tempDir("equivae-repo-hup-");
  const copy = (v: string) => cpSync(DEFAULT_MODEL_DIR, join(repo, "digits", v), { recursive: true });
  copy("1");
  const keys = join(tempDir("equivae-keys-"), "keys.txt");
  writeFileSync(keys, "first-key-0123456789\n");
  const srv = await startServerProcess([
    "--model-repository",
    repo,
    "--api-key-file",
    keys,
    "--threads",
    "1",
    "--workers",
    "1",
    "--drain-secs",
    "0",
  ]);
  try {
    const get = (key: string) =>
      fetch(`http://127.0.0.1:${srv.port}/v1/models/digits`, { headers: { authorization: `Bearer ${key}` } });
    const version = async (key: string) => ((await (await get(key)).json()) as { version: string }).version;
    assert.equal(await version("first-key-0123456789"), "1");
    copy("2");
    writeFileSync(keys, "second-key-0123456789\n"); // a rotation
    srv.child.kill("SIGHUP");
    let v = "1";
    for (let i = 0; i < 100 && v !== "2"; i++) {
      await new Promise((r) => setTimeout(r, 100));
      v = await version("second-key-0123456789");
    }
    assert.equal(v, "2", `version after SIGHUP\n${srv.output()}`);
    assert.equal((await get("first-key-0123456789")).status, 401, "the rotated-out key is refused");
    assert.equal(srv.child.exitCode, null, "alive after SIGHUP");
    assert.match(srv.output(), /SIGHUP: reloading the models/);
  } finally {
    await srv.stop(5000);
  }
});

test("--poll-secs picks up a new version by itself; a removed model is unloaded", async () => {
  const repo = tempDir("equivae-repo-poll-");
  const copy = (m: string, v: string) => cpSync(DEFAULT_MODEL_DIR, join(repo, m, v), { recursive: true });
  copy("digits", "1");
  copy("spare", "1");
  const srv = await startServerProcess([
    "--model-repository",
    repo,
    "--poll-secs",
    "1",
    "--drain-secs",
    "0",
    "--threads",
    "1",
    "--workers",
    "1",
  ]);
  try {
    const models = async () =>
      (
        (await (await fetch(`http://127.0.0.1:${srv.port}/v1/models`)).json()) as {
          models: Array<{ id: string; state: string; version?: string }>;
        }
      ).models;
    copy("digits", "7");
    rmSync(join(repo, "spare"), { recursive: true });
    let list = await models();
    for (let i = 0; i < 80 && !(list[0].version === "7" && list[1].state === "unloaded"); i++) {
      await new Promise((r) => setTimeout(r, 100));
      list = await models();
    }
    assert.deepEqual(
      list.map((m) => [m.id, m.state, m.version]),
      [
        ["digits", "ready", "7"],
        ["spare", "unloaded", undefined],
      ],
      srv.output(),
    );
  } finally {
    await srv.stop(5000);
  }
});
