// The serve command's flag table: flags beat their environment twins, which beat the defaults; bad
// values are one clear error; --help and the README's table are both generated from the table.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { command as serveCommand } from "../src/commands/serve.js";
import { parseServeConfig } from "../src/serve/command.js";
import { DEFAULT_LIMITS, SERVE_FLAGS, SERVE_NODE_FLAGS } from "../src/serve/config.js";
import { InputError } from "../src/util/errors.js";
import { flagsMarkdown, usageText } from "../src/util/flags.js";
import { runCli } from "./helpers/cli.js";
import { ROOT } from "./helpers/paths.js";

test("defaults, environment twins and flags, in that order of precedence", () => {
  const d = parseServeConfig([], {});
  assert.ok(d !== "help");
  assert.equal(d.port, 8080);
  assert.equal(d.threads, 1);
  assert.equal(d.drainSecs, 5);
  assert.equal(d.adminPort, undefined);
  assert.ok(d.workers >= 1);
  assert.deepEqual(d.limits, DEFAULT_LIMITS);
  const env = {
    EQUIVAE_WORKERS: "3",
    EQUIVAE_MAX_BATCH_DELAY_US: "500",
    EQUIVAE_BODY_TIMEOUT_MS: "250",
    PORT: "9",
  };
  const e = parseServeConfig([], env);
  assert.ok(e !== "help");
  assert.equal(e.workers, 3);
  assert.equal(e.maxBatchDelayUs, 500);
  assert.equal(e.limits.bodyTimeoutMs, 250);
  assert.equal(e.port, 9);
  const f = parseServeConfig(["--workers", "1", "--port", "0", "--admin-port", "0"], env);
  assert.ok(f !== "help");
  assert.equal(f.workers, 1);
  assert.equal(f.port, 0);
  assert.equal(f.adminPort, 0);
  assert.equal(parseServeConfig(["--help"], {}), "help");
});

test("bad values are one clear InputError naming the flag and its twin", () => {
  const bad: Array<[string[], Record<string, string>, RegExp]> = [
    [["--workers", "0"], {}, /--workers \(\$EQUIVAE_WORKERS\) must be an integer of at least 1 \(got '0'\)/],
    [[], { EQUIVAE_MAX_PIXELS: "lots" }, /--max-pixels \(\$EQUIVAE_MAX_PIXELS\)/],
    [["--drain-secs=-1"], {}, /--drain-secs .* of at least 0/],
    [["--engine", "gpu"], {}, /--engine \(\$EQUIVAE_ENGINE\) must be auto, onnx or tfjs \(got 'gpu'\)/],
    [[], { EQUIVAE_ENGINE: "gpu" }, /--engine \(\$EQUIVAE_ENGINE\) must be auto, onnx or tfjs/],
    [["--max-request-pixels", "10"], {}, /--max-request-pixels must be at least --max-pixels/],
    [["--nope"], {}, /Unknown option '--nope'/],
  ];
  for (const [argv, env, re] of bad)
    assert.throws(
      () => parseServeConfig(argv, env),
      (e: unknown) => e instanceof InputError && re.test(e.message),
    );
});

test("--help and the README's flag table are generated from the one table", () => {
  const help = usageText(serveCommand);
  // Each flag's lines (its help may wrap) name its environment twin.
  const blocks = help.split(/\n(?= {2}--)/);
  for (const f of SERVE_FLAGS)
    assert.ok(
      blocks.some((b) => b.startsWith(`  --${f.flag} `) && b.includes(`$${f.env}`)),
      `--${f.flag}'s help does not name $${f.env}`,
    );
  const r = runCli(["serve", "--help"]);
  assert.equal(r.code, 0);
  assert.equal(r.stdout.trim(), help.trim());
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  assert.ok(
    readme.includes(flagsMarkdown(SERVE_FLAGS)),
    `README.md's serve flag table is stale; it should read:\n${flagsMarkdown(SERVE_FLAGS)}`,
  );
});

test("npm start and the Dockerfile run the server with its node flags", () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
  assert.equal(pkg.scripts.start, `node ${SERVE_NODE_FLAGS.join(" ")} dist/src/cli.js serve`);
  const docker = readFileSync(join(ROOT, "Dockerfile"), "utf8");
  const cmd = JSON.stringify(["node", ...SERVE_NODE_FLAGS, "dist/src/cli.js", "serve"]).replace(/,/g, ", ");
  assert.ok(docker.includes(`CMD ${cmd}`), `Dockerfile should end with CMD ${cmd}`);
});
