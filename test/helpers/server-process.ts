// The real server as a child process: `node dist/src/cli.js serve --port 0 --host 127.0.0.1 ...`.
// The port comes from its "listening on http://127.0.0.1:PORT" line; it is ready when /readyz is 200.
// EQUIVAE_TEST_CLI overrides the CLI path (e.g. to run these tests against another build).
import { spawn, type ChildProcess } from "node:child_process";
import { SERVE_NODE_FLAGS } from "../../src/serve/config.js";
import { CLI, ROOT } from "./paths.js";
import { send } from "./raw-http.js";

export interface ServerProcess {
  child: ChildProcess;
  port: number;
  /** The admin port (probes and metrics), when started with --admin-port. */
  adminPort?: number;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** Resolves with the exit code (null when killed by a signal) and the signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
  stop(graceMs?: number): Promise<void>;
}

export async function startServerProcess(
  args: string[] = [],
  opts: { env?: Record<string, string>; readyTimeoutMs?: number; cli?: string } = {},
): Promise<ServerProcess> {
  const cli = opts.cli ?? process.env.EQUIVAE_TEST_CLI ?? CLI;
  const child = spawn(
    process.execPath,
    [...SERVE_NODE_FLAGS, cli, "serve", "--port", "0", "--host", "127.0.0.1", ...args],
    {
      cwd: ROOT,
      env: { ...process.env, ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.on("exit", (code, signal) => {
      done = true;
      r({ code, signal });
    }),
  );
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 90_000);
  let port: number | undefined;
  while (Date.now() < deadline && !done) {
    if (port === undefined) {
      const m =
        /listening on[^\n]*?http:\/\/127\.0\.0\.1:(\d+)/.exec(out) ?? /http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) port = Number(m[1]);
    }
    if (port !== undefined) {
      const r = await send(port, "/readyz", { method: "GET", timeoutMs: 2000 });
      if (r.status === 200) break;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  if (port === undefined || done || Date.now() >= deadline) {
    child.kill("SIGKILL");
    throw new Error(`the server did not become ready (args: ${args.join(" ")}); its output:\n${out}`);
  }
  const admin = /probes and metrics also on port (\d+)/.exec(out);
  const adminPort = admin ? Number(admin[1]) : undefined;
  const stop = async (graceMs = 10_000) => {
    if (done) return;
    child.kill("SIGTERM");
    const t = setTimeout(() => child.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(t);
  };
  return { child, port, adminPort, output: () => out, exited, stop };
}

/** One sample of a counter (or gauge) from /metrics; undefined when the series is absent. */
export async function readMetric(port: number, name: string): Promise<number | undefined> {
  const r = await send(port, "/metrics", { method: "GET", timeoutMs: 10_000 });
  if (r.status !== 200) throw new Error(`/metrics answered ${r.status ?? r.error}`);
  let total: number | undefined;
  for (const line of r.body.toString("utf8").split("\n")) {
    if (line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m && m[1] === name) total = (total ?? 0) + Number(m[3]);
  }
  return total;
}
