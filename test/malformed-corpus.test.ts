// Malformed input against the real server process, over real sockets: >= 1,000 generated requests
// (test/helpers/corpus.ts) to the four POST endpoints in both body kinds. Every answer must be a 4xx
// RFC 9457 problem (or a 2xx where the input may legitimately be valid), never a 5xx or a dropped
// connection, and the server must stay alive. Then: header-only bombs are 413 without reaching the
// decoder, invalid images get the same answer every time, and a slow body is 408 without holding a
// concurrency slot. CORPUS_RESULTS=file.json writes every case's outcome.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { connect } from "node:net";
import {
  ENDPOINTS,
  FORMATS,
  buildCorpus,
  countByCategory,
  encodeImage,
  headerBombs,
  mnistLike,
  multipartBody,
  type CorpusCase,
} from "./helpers/corpus.js";
import { pool, problemOf, send, type SendResult } from "./helpers/raw-http.js";
import { readMetric, startServerProcess, type ServerProcess } from "./helpers/server-process.js";
import { Rng } from "../src/util/rng.js";

const CONCURRENCY = 8;
const BATCH = 100;
const DECODED = "equivae_images_decoded_total";

interface Outcome {
  c: CorpusCase;
  r: SendResult;
}

/** What a result looks like in a failure list. */
function show(o: Outcome): string {
  const p = problemOf(o.r);
  const got = o.r.error
    ? `error ${o.r.error}`
    : `${o.r.status} ${p ? p.type.replace(/^.*#problem-/, "") : `(${String(o.r.headers["content-type"] ?? "no content type")})`}`;
  const want = o.c.expect === undefined ? "2xx/4xx" : `${o.c.expect}${o.c.kind ? " " + o.c.kind : ""}`;
  const detail = p ? `: ${p.detail.slice(0, 120)}` : "";
  return `${o.c.name}${o.c.chunked ? " [chunked]" : ""} -> ${got} (want ${want})${detail}`;
}

/** Failures grouped by category, a few examples each. */
function report(title: string, bad: Outcome[], total: number): string {
  const by = new Map<string, Outcome[]>();
  for (const o of bad) by.set(o.c.category, [...(by.get(o.c.category) ?? []), o]);
  const lines = [`${title}: ${bad.length} of ${total}`];
  for (const [cat, list] of by) {
    lines.push(`  ${cat}: ${list.length}`);
    for (const o of list.slice(0, 6)) lines.push(`    ${show(o)}`);
  }
  return lines.join("\n");
}

/** No drain delay on SIGTERM at teardown (the drain itself is test/drain.test.ts's subject). */
const FAST_EXIT = { env: { EQUIVAE_DRAIN_SECS: "0" } };

const MP = (b: string) => `multipart/form-data; boundary=${b}`;

describe("malformed requests against the real server", () => {
  let server: ServerProcess;
  let cases: CorpusCase[];
  const outcomes: Outcome[] = [];
  const deadAfter: string[] = [];
  let runError: unknown;

  before(async () => {
    cases = await buildCorpus();
    server = await startServerProcess(["--threads", "1"], FAST_EXIT);
    try {
      for (let b = 0; b < cases.length; b += BATCH) {
        const batch = cases.slice(b, b + BATCH);
        const rs = await pool(batch, CONCURRENCY, (c) =>
          send(server.port, c.path, {
            method: c.method,
            headers: c.headers,
            body: c.body,
            chunked: c.chunked,
          }),
        );
        rs.forEach((r, i) => outcomes.push({ c: batch[i], r }));
        const h = await send(server.port, "/healthz", { method: "GET", timeoutMs: 5000 });
        if (h.status !== 200) {
          const gone = server.child.exitCode !== null || server.child.signalCode !== null;
          deadAfter.push(
            `cases ${b + 1}-${b + batch.length} (${[...new Set(batch.map((c) => c.category))].join(", ")}): ` +
              `/healthz -> ${h.status ?? h.error}` +
              (gone
                ? `; the server process exited (code ${server.child.exitCode}, signal ${server.child.signalCode}), ` +
                  `its output ends:\n${server.output().slice(-2500)}\n(restarted to go on)`
                : ""),
          );
          // A dead server is restarted so the rest of the corpus is still measured (and reported).
          if (gone || h.error !== undefined) {
            await server.stop(2000);
            server = await startServerProcess(["--threads", "1"], FAST_EXIT);
          }
        }
      }
    } catch (e) {
      runError = e;
    }
    if (process.env.CORPUS_RESULTS)
      writeFileSync(
        process.env.CORPUS_RESULTS,
        JSON.stringify(
          outcomes.map((o) => ({
            name: o.c.name,
            category: o.c.category,
            chunked: o.c.chunked ?? false,
            expect: o.c.expect ?? null,
            kind: o.c.kind ?? null,
            status: o.r.status ?? null,
            error: o.r.error ?? null,
            type: problemOf(o.r)?.type ?? null,
            detail: problemOf(o.r)?.detail ?? null,
            contentType: o.r.headers["content-type"] ?? null,
            ms: Math.round(o.r.ms),
          })),
          null,
          1,
        ),
      );
  });

  after(async () => {
    await server?.stop();
  });

  test("the corpus: >= 1,000 cases over the 4 endpoints and both body kinds, deterministic", async () => {
    const counts = countByCategory(cases);
    console.log(`corpus: ${cases.length} cases ${JSON.stringify(counts)}`);
    assert.ok(cases.length >= 1000, `${cases.length} cases`);
    for (const e of ENDPOINTS)
      for (const kind of ["application/json", "multipart/form-data"])
        assert.ok(
          cases.some((c) => c.path.endsWith(e) && (c.headers["content-type"] ?? "").startsWith(kind)),
          `${e} ${kind}`,
        );
    const again = await buildCorpus();
    assert.equal(again.length, cases.length);
    assert.ok(
      again.every((c, i) => c.name === cases[i].name && c.body.equals(cases[i].body)),
      "same seed, same corpus",
    );
  });

  test("no 5xx, no connection error, and /healthz 200 after every 100 requests", () => {
    const bad = outcomes.filter(
      (o) => o.r.error !== undefined || o.r.status === undefined || o.r.status >= 500,
    );
    const lines = [report("5xx or connection errors", bad, outcomes.length), ...deadAfter];
    if (runError !== undefined) lines.push(`the run stopped: ${String(runError)}`);
    if (outcomes.length !== cases.length) lines.push(`only ${outcomes.length} of ${cases.length} cases sent`);
    const failed = bad.length > 0 || lines.length > 1;
    const msg = lines.join("\n");
    if (failed) console.log(msg);
    assert.ok(!failed, msg);
  });

  test("every 4xx answer is an RFC 9457 application/problem+json with a matching status", () => {
    const bad = outcomes.filter((o) => {
      if (o.r.status === undefined || o.r.status < 400 || o.r.status >= 500) return false;
      const p = problemOf(o.r);
      return !p || p.status !== o.r.status;
    });
    const msg = report("4xx answers that are not problem+json", bad, outcomes.length);
    if (bad.length) console.log(msg);
    assert.equal(bad.length, 0, msg);
  });

  test("each certainly-invalid request gets its expected status (and problem kind)", () => {
    const bad = outcomes.filter(({ c, r }) => {
      const s = r.status;
      if (s === undefined) return true;
      if (c.expect === undefined) return !((s >= 200 && s < 300) || (s >= 400 && s < 500));
      if (c.expect === "4xx" ? s < 400 || s > 499 : s !== c.expect) return true;
      if (c.kind && !(problemOf(r)?.type ?? "").endsWith(c.kind)) return true;
      return false;
    });
    const msg = report("unexpected answers", bad, outcomes.length);
    if (bad.length) console.log(msg);
    assert.equal(bad.length, 0, msg);
  });

  test(`header-only bombs (60000x60000, each format) are 413 and never reach the decoder (${DECODED})`, async () => {
    const problems: string[] = [];
    const before0 = await readMetric(server.port, DECODED);
    if (before0 === undefined) problems.push(`/metrics has no ${DECODED}`);
    const bombs = headerBombs();
    for (const fmt of FORMATS) {
      const r = await send(server.port, "/classify", {
        headers: { "content-type": "application/json" },
        body: Buffer.from(JSON.stringify({ images: [bombs[fmt].toString("base64")] })),
      });
      const p = problemOf(r);
      if (r.status !== 413 || !p?.type.endsWith("image-too-large"))
        problems.push(`${fmt} bomb -> ${r.status ?? r.error} ${p?.type ?? ""} ${p?.detail ?? ""}`);
    }
    const after0 = await readMetric(server.port, DECODED);
    if (before0 !== undefined && after0 !== before0)
      problems.push(`${DECODED} went from ${before0} to ${after0} while sending bombs`);
    // The counter is live: one valid image moves it.
    const png = await encodeImage(mnistLike(new Rng(5)), 28, 28, "png");
    const ok = await send(server.port, "/classify", {
      headers: { "content-type": "application/json" },
      body: Buffer.from(JSON.stringify({ images: [png.toString("base64")] })),
    });
    if (ok.status !== 200) problems.push(`a valid PNG -> ${ok.status ?? ok.error}`);
    const after1 = await readMetric(server.port, DECODED);
    if (after0 !== undefined && !(after1! > after0))
      problems.push(`${DECODED} did not move on a valid image`);
    assert.deepEqual(problems, []);
  });

  test("a truncated PNG gets the same (status, type, detail) 20 times, JSON and multipart", async () => {
    const png = await encodeImage(mnistLike(new Rng(9)), 28, 28, "png");
    const cut = png.subarray(0, Math.floor(png.length * 0.5));
    for (const kind of ["json", "multipart"] as const) {
      const body =
        kind === "json"
          ? Buffer.from(JSON.stringify({ images: [cut.toString("base64")] }))
          : multipartBody([{ name: "image", filename: "cut.png", type: "image/png", data: cut }], "b0und");
      const headers = { "content-type": kind === "json" ? "application/json" : MP("b0und") };
      const rs = await pool(Array.from({ length: 20 }), 4, () =>
        send(server.port, "/classify", { headers, body }),
      );
      const answers = rs.map((r) => {
        const p = problemOf(r);
        return JSON.stringify([r.status ?? r.error, p?.type, p?.detail]);
      });
      assert.equal(new Set(answers).size, 1, `${kind}: ${[...new Set(answers)].join("\n")}`);
      assert.equal(rs[0].status, 400, answers[0]);
      assert.ok(problemOf(rs[0])?.type.endsWith("invalid-image"), answers[0]);
    }
  });
});

test("a body not complete within --body-timeout-ms is 408 and holds no concurrency slot", async () => {
  const server = await startServerProcess(
    ["--threads", "1", "--body-timeout-ms", "1000", "--max-concurrent", "2"],
    FAST_EXIT,
  );
  const sockets: ReturnType<typeof connect>[] = [];
  try {
    // Four slow uploads: headers promise 1000 bytes, then one byte.
    const answers = Array.from({ length: 4 }, () => {
      const s = connect(server.port, "127.0.0.1");
      sockets.push(s);
      let got = "";
      s.on("error", () => {});
      s.write(
        "POST /classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
      );
      return new Promise<string>((r) => {
        s.on("data", (d) => {
          got += d;
          // A complete answer: headers, then a JSON problem body.
          if (/\r\n\r\n[\s\S]*\}\s*$/.test(got)) r(got);
        });
        s.on("close", () => r(got));
        setTimeout(() => r(got), 6000).unref();
      });
    });
    await new Promise((r) => setTimeout(r, 300));
    // Valid clients are admitted while the slow bodies are still arriving.
    const png = await encodeImage(mnistLike(new Rng(3)), 28, 28, "png");
    const valid = await Promise.all(
      [0, 1].map(() =>
        send(server.port, "/classify", {
          headers: { "content-type": "application/json" },
          body: Buffer.from(JSON.stringify({ images: [png.toString("base64")] })),
          timeoutMs: 5000,
        }),
      ),
    );
    assert.deepEqual(
      valid.map((r) => r.status ?? r.error),
      [200, 200],
      "valid requests during slow uploads",
    );
    const raw = await Promise.all(answers);
    for (const a of raw) {
      assert.match(a, /^HTTP\/1\.1 408 /, `slow body answer: ${JSON.stringify(a.slice(0, 300))}`);
      assert.match(a, /application\/problem\+json/i);
      assert.match(a, /body-timeout/);
    }
    const after = await send(server.port, "/healthz", { method: "GET" });
    assert.equal(after.status, 200);
  } finally {
    for (const s of sockets) s.destroy();
    await server.stop();
  }
});
