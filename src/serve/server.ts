/**
 * The listening server: the app on --port, the probes on --admin-port when given, and the
 * shutdown that drains. On SIGTERM /readyz answers 503 for --drain-secs while requests are still
 * served (every answer now closes its connection), so a load balancer stops sending; then, once no
 * new connection has arrived for QUIET_MS, the listener closes (closing it while connections wait
 * in the kernel's accept queue would reset them), the requests in flight and those already sent on
 * accepted connections finish, and the process exits 0. An accepted connection is never reset
 * while it has a request in flight.
 */
import express from "express";
import { createServer, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { Engine } from "../inference/index.js";
import { createApp, createRepositoryApp, type AppOptions, type ServeApp } from "./app.js";
import { isLoopback } from "./auth.js";
import type { ModelSource } from "./models.js";
import { errorMessage } from "../util/errors.js";

export interface StartOptions extends AppOptions {
  port?: number;
  host?: string;
  /** Also serve /healthz, /readyz and /metrics on this port. */
  adminPort?: number;
  /** Install SIGTERM/SIGINT handlers that drain and exit 0 (default true). */
  handleSignals?: boolean;
  /** Seconds /readyz answers 503 before the listener closes (default 0; the CLI's default is 5). */
  drainSecs?: number;
  /** Longest wait for in-flight requests after the listener closed, before closing what remains (ms, default 30 s). */
  drainTimeoutMs?: number;
  /** Log line sink (default console.log). */
  info?: (msg: string) => void;
  /** The model served unprefixed when serving a repository (default: the only or the first). */
  defaultModel?: string;
  /** Look for new or changed models in the source every N seconds (0: never; SIGHUP always does). */
  pollSecs?: number;
}

export interface RunningServer {
  app: ServeApp;
  server: Server;
  admin?: Server;
  url: string;
  port: number;
  adminPort?: number;
  /** Drain (readyz 503 for drainSecs, unless `drain` is false), stop accepting, finish in-flight requests, release the models. */
  close(drain?: boolean): Promise<void>;
}

/** A connection's requests: in flight now, and answered so far. */
interface Conn {
  since: number;
  busy: number;
  served: number;
}

/** How long an accepted connection may stay silent during shutdown before it is closed. */
const SILENT_CONNECTION_MS = 5000;

/** After the drain period, the listener closes once no connection has arrived for this long. */
const QUIET_MS = 200;

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Tracks each connection so shutdown closes only those with no request in flight. */
function trackConnections(server: Server): { conns: Map<Socket, Conn>; lastAt: () => number } {
  const conns = new Map<Socket, Conn>();
  let last = 0;
  server.on("connection", (s: Socket) => {
    last = performance.now();
    conns.set(s, { since: last, busy: 0, served: 0 });
    s.once("close", () => conns.delete(s));
  });
  server.on("request", (req, res) => {
    const c = conns.get(req.socket);
    if (!c) return;
    c.busy++;
    res.once("close", () => {
      c.busy--;
      c.served++;
    });
  });
  return { conns, lastAt: () => last };
}

/** Resolves once no connection has arrived for `quietMs` (checked every 20 ms), or after `maxMs`. */
async function quiet(lastAt: () => number, quietMs: number, maxMs: number): Promise<void> {
  const end = performance.now() + maxMs;
  while (performance.now() - lastAt() < quietMs && performance.now() < end)
    await new Promise((r) => setTimeout(r, 20));
}

/** Picks up what changed in the models' source; logs what failed (the previous versions keep serving). */
async function reloadModels(app: ServeApp, why: string, info: (m: string) => void): Promise<void> {
  info(`${why}: reloading the models`);
  const failed = await app.models.reload();
  for (const f of failed) info(`reload: model ${f.id} not reloaded: ${f.reason}`);
}

/**
 * Starts listening at once on an engine (one model) or a model source (a repository or a
 * checkpoint folder, loaded in the background); /readyz turns 200 when the default model serves.
 */
export async function startServer(
  source: Engine | ModelSource,
  opts: StartOptions = {},
): Promise<RunningServer> {
  const info = opts.info ?? ((m: string) => console.log(m));
  // An Engine has a manifest; a ModelSource does not.
  const app =
    "manifest" in source ? createApp(source, opts) : createRepositoryApp(source, { log: info, ...opts });
  const host = opts.host ?? "0.0.0.0";
  const http = createServer(app);
  const { conns, lastAt } = trackConnections(http);
  const port = await listen(http, opts.port ?? 8080, host);
  http.on("error", (e) => info(`server error: ${e.message}`));
  let admin: Server | undefined;
  let adminPort: number | undefined;
  if (opts.adminPort !== undefined) {
    admin = createServer(express().disable("x-powered-by").use(app.probes));
    adminPort = await listen(admin, opts.adminPort, host);
  }
  const url = `http://${host === "0.0.0.0" ? "127.0.0.1" : host}:${port}`;
  // Bound to every interface: say so, and give a URL that works from this machine.
  const where = host === "0.0.0.0" ? `all interfaces, port ${port} (${url})` : url;
  info(
    `listening on ${where}` +
      (adminPort !== undefined ? `; probes and metrics also on port ${adminPort}` : ""),
  );
  if (app.apiKeyCount() === 0 && !isLoopback(host))
    info(
      `WARNING: no API key configured and bound to ${host}: every route is open to anyone who can reach port ${port} (set --api-key-file or EQUIVAE_API_KEYS)`,
    );
  void app.ready.then((ok) => {
    const current = app.models.get(app.models.defaultModel)?.current;
    const provider = current?.engine.executionProvider ?? "CPUExecutionProvider";
    info(
      ok
        ? `ready: warm-up inference succeeded (default model ${app.models.defaultModel}, version ${current?.version}, ${provider})`
        : "NOT ready: warm-up inference failed",
    );
  });
  let reloading: Promise<void> | undefined;
  const reload = (why: string) =>
    (reloading ??= reloadModels(app, why, info).finally(() => (reloading = undefined)));
  const poller =
    opts.pollSecs && opts.pollSecs > 0
      ? setInterval(() => void app.ready.then(() => reload("poll")), opts.pollSecs * 1000)
      : undefined;
  poller?.unref();

  const drainSecs = opts.drainSecs ?? 0;
  let closing: Promise<void> | undefined;
  const close = (drain = true) =>
    (closing ??= (async () => {
      app.state.draining = true;
      if (poller) clearInterval(poller);
      if (drain && drainSecs > 0) await new Promise((r) => setTimeout(r, drainSecs * 1000));
      await quiet(lastAt, QUIET_MS, opts.drainTimeoutMs ?? 30_000);
      const closed = new Promise<void>((resolve) => http.close(() => resolve()));
      // Close connections with nothing in flight that have been answered (their answers said
      // Connection: close) or stayed silent too long; a connection mid-request is never cut.
      const sweep = () => {
        const now = performance.now();
        for (const [s, c] of conns)
          if (c.busy === 0 && (c.served > 0 || now - c.since > SILENT_CONNECTION_MS)) s.destroy();
      };
      sweep();
      const sweeper = setInterval(sweep, 50);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          info("drain timeout: closing the remaining connections");
          http.closeAllConnections();
          resolve();
        }, opts.drainTimeoutMs ?? 30_000);
      });
      await Promise.race([closed, timeout]);
      clearInterval(sweeper);
      clearTimeout(timer);
      // Work of requests whose clients went away may still run: let it finish before releasing.
      await app.models.idle();
      if (admin) {
        admin.closeAllConnections();
        await new Promise<void>((r) => admin!.close(() => r()));
      }
      await app.models.close();
    })());

  if (opts.handleSignals !== false) {
    const onSignal = (sig: string) => {
      info(
        `${sig}: draining ${app.inflight()} in-flight request(s) (readyz 503 for ${drainSecs} s), then exiting`,
      );
      void close().then(
        () => {
          info("drained; bye");
          process.exit(0);
        },
        (e) => {
          info(`shutdown error: ${e instanceof Error ? e.message : String(e)}`);
          process.exit(1);
        },
      );
    };
    process.once("SIGTERM", () => onSignal("SIGTERM"));
    process.once("SIGINT", () => onSignal("SIGINT"));
    // SIGHUP reloads (new or changed model versions) instead of killing the process.
    process.on("SIGHUP", () => {
      // The API keys first: a rotation takes effect even while models load. A bad key file keeps
      // the keys in force (a broken rotation never opens the server).
      try {
        app.reloadKeys();
        info(`SIGHUP: API keys re-read (${app.apiKeyCount()} in force)`);
      } catch (e) {
        info(`SIGHUP: API keys not re-read, the previous ones stay in force: ${errorMessage(e)}`);
      }
      void app.ready.then(() => reload("SIGHUP"));
    });
  }
  return { app, server: http, admin, url, port, adminPort, close };
}
