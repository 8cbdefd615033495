// HTTP throughput of POST /classify with one PNG, on loopback against an in-process server, at 1 and
// 64 connections (autocannon, 8 s each). Printed, not asserted. Usage: npm run bench:http
import { createRequire } from "node:module";
import { loadEngine } from "../src/inference/index.js";
import { DEFAULT_MODEL_DIR } from "../src/serve/config.js";
import { encodePng } from "../src/serve/images.js";
import { startServer } from "../src/serve/server.js";

interface Result {
  requests: { average: number };
  latency: { p50: number; p99: number; mean: number };
  non2xx: number;
}
// autocannon ships no types; load it through require with the little of its API used here.
const autocannon = createRequire(import.meta.url)("autocannon") as (
  o: Record<string, unknown>,
) => Promise<Result>;

const DURATION = Number(process.env.BENCH_SECONDS ?? 8);
const engine = await loadEngine(DEFAULT_MODEL_DIR, { engine: "onnx", threads: 1 });
const srv = await startServer(engine, { port: 0, host: "127.0.0.1", handleSignals: false, info: () => {} });
await srv.app.ready;

// A multipart body with one 28x28 PNG (a smooth blob).
const px = Float32Array.from({ length: 784 }, (_, i) =>
  Math.exp(-(((i % 28) - 14) ** 2 + (Math.floor(i / 28) - 14) ** 2) / 40),
);
const png = encodePng(px, 28, 28, 1);
const boundary = "benchboundary";
const body = Buffer.concat([
  Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="x.png"\r\nContent-Type: image/png\r\n\r\n`,
  ),
  png,
  Buffer.from(`\r\n--${boundary}--\r\n`),
]);

console.log(
  `POST /classify, one ${png.length}-byte PNG, ${DURATION} s per run, engine ${engine.kind} (1 ORT thread)`,
);
console.log("| connections | req/s | mean ms | p50 ms | p99 ms | non-2xx |");
console.log("| --- | --- | --- | --- | --- | --- |");
for (const connections of [1, 64]) {
  const r = await autocannon({
    url: `${srv.url}/classify`,
    method: "POST",
    headers: { "content-type": `multipart/form-data; boundary=${boundary}` },
    body,
    connections,
    duration: DURATION,
  });
  console.log(
    `| ${connections} | ${r.requests.average.toFixed(0)} | ${r.latency.mean.toFixed(2)} | ${r.latency.p50} | ${r.latency.p99} | ${r.non2xx} |`,
  );
}
await srv.close();
