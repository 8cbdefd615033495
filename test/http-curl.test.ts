import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { loadEngine } from "../src/inference/index.js";
import { DEFAULT_MODEL_DIR } from "../src/serve/config.js";
import { CURL_EXAMPLES } from "../src/serve/examples.js";
import { startServer, type RunningServer } from "../src/serve/server.js";
import { ROOT, tempDir } from "./helpers/paths.js";

const hasCurl = spawnSync("sh", ["-c", "command -v curl && command -v file"]).status === 0;
let srv: RunningServer;

before(async () => {
  // curl and file are on every machine image this project runs on; a skip would hide a broken README.
  assert.ok(hasCurl, "the README examples need curl and file on PATH");
  const engine = await loadEngine(DEFAULT_MODEL_DIR, { engine: "onnx", threads: 1 });
  srv = await startServer(engine, { port: 0, host: "127.0.0.1", handleSignals: false, info: () => {} });
  assert.equal(await srv.app.ready, true);
});

after(async () => {
  await srv?.close();
});

const run = promisify(execFile);

test("the README's curl examples work as written against a listening server", async () => {
  const cwd = tempDir("equivae-curl-");
  for (const ex of CURL_EXAMPLES) {
    const cmd = ex.command.replaceAll("localhost:8080", `127.0.0.1:${srv.port}`);
    // Async: the server runs in this process, so its event loop must stay free.
    const r = await run("bash", ["-c", cmd], {
      cwd,
      encoding: "utf8",
      timeout: 30_000,
      maxBuffer: 1 << 24,
    }).catch((e: { code?: number; stderr?: string }) =>
      assert.fail(`${ex.title}: ${cmd}\nexit ${e.code}: ${e.stderr}`),
    );
    assert.match(r.stdout, ex.expect, `${ex.title}: ${cmd}\n${r.stdout.slice(0, 500)}`);
  }
});

test("the README's Serve examples block is exactly these examples, in order", () => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const block = CURL_EXAMPLES.map((ex) => `# ${ex.title}\n${ex.command}`).join("\n\n");
  assert.ok(
    readme.includes("```sh\n" + block + "\n```\n"),
    "README.md's examples differ from src/serve/examples.ts",
  );
});
