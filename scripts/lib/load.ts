/** What the benchmarks share: autocannon (which ships no types) and a free loopback port. */
import { createRequire } from "node:module";
import { createServer } from "node:net";

/** The little of autocannon's result the benchmarks read. */
export interface CannonResult {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  "2xx": number;
  requests: { total: number; average: number };
  statusCodeStats?: Record<string, { count: number }>;
}

/** The running instance autocannon returns (it emits one "response" per answer). */
export interface CannonTracker {
  on(ev: "response", f: (client: unknown, status: number, bytes: number, ms: number) => void): void;
}

/** autocannon, loaded through require with the part of its API used here. */
export const autocannon = createRequire(import.meta.url)("autocannon") as {
  (o: Record<string, unknown>, cb: (err: Error | null, r: CannonResult) => void): CannonTracker;
  (o: Record<string, unknown>): Promise<CannonResult>;
};

/** A port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}
