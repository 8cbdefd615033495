import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Engine } from "../inference/index.js";
import { createApp, type ServeApp } from "./app.js";
import type { ServeOptions } from "./config.js";

export interface StartOptions extends ServeOptions {
  port?: number;
  host?: string;
  /** Install SIGTERM/SIGINT handlers that drain and exit 0 (default true). */
  handleSignals?: boolean;
  /** Longest wait for in-flight requests on shutdown before exiting anyway (ms, default 30 s). */
  drainTimeoutMs?: number;
  /** Log line sink (default console.log). */
  info?: (msg: string) => void;
}

export interface RunningServer {
  app: ServeApp;
  server: Server;
  url: string;
  port: number;
  /** Stop accepting, wait for in-flight requests, release the engine. */
  close(): Promise<void>;
}

/** Starts listening at once; /readyz turns 200 when the warm-up inference has succeeded. */
export async function startServer(engine: Engine, opts: StartOptions = {}): Promise<RunningServer> {
  const info = opts.info ?? ((m: string) => console.log(m));
  const app = createApp(engine, opts);
  const server = app.listen(opts.port ?? 8080, opts.host ?? "0.0.0.0");
  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve);
    server.once("error", reject);
  });
  server.on("error", (e) => info(`server error: ${e.message}`));
  const port = (server.address() as AddressInfo).port;
  const host = opts.host ?? "0.0.0.0";
  const url = `http://${host === "0.0.0.0" ? "127.0.0.1" : host}:${port}`;
  // Bound to every interface: say so, and give a URL that works from this machine.
  const where = host === "0.0.0.0" ? `all interfaces, port ${port} (${url})` : url;
  info(
    `listening on ${where} (model ${app.state ? engine.manifest.dataset?.name : ""}, engine ${engine.kind})`,
  );
  void app.ready.then((ok) =>
    info(ok ? "ready: warm-up inference succeeded" : "NOT ready: warm-up inference failed"),
  );

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      app.state.draining = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      // Keep-alive sockets that become idle after their last response are closed too.
      const idle = setInterval(() => server.closeIdleConnections(), 50);
      const timeout = new Promise<void>((resolve) =>
        setTimeout(() => {
          info("drain timeout: closing the remaining connections");
          server.closeAllConnections();
          resolve();
        }, opts.drainTimeoutMs ?? 30_000).unref(),
      );
      await Promise.race([closed, timeout]);
      clearInterval(idle);
      // Work of requests whose clients went away may still run: let it finish before releasing.
      await app.queue.idle();
      await engine.dispose();
    })());

  if (opts.handleSignals !== false) {
    const onSignal = (sig: string) => {
      info(`${sig}: draining ${app.inflight()} in-flight request(s), then exiting`);
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
  }
  return { app, server, url, port, close };
}
