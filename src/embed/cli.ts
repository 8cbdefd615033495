/** The `equivae embed` command: plan (cheap checks first), load the engine, run, summarise. */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseDevice } from "../inference/device.js";
import { loadEngine } from "../inference/index.js";
import { parseWhat, planEmbed, runEmbed, summaryLine, type EmbedResult } from "./run.js";
import { parseShard } from "./shard.js";

/** The shipped default model (this file is dist/src/embed/cli.js once compiled). */
export const DEFAULT_MODEL = resolve(
  dirname(fileURLToPath(import.meta.url)),
  "..",
  "..",
  "..",
  "models",
  "mnist",
);

export interface EmbedCommand {
  input: string;
  output: string;
  format?: string;
  outputFormat?: string;
  what?: string;
  model: string;
  batchSize: number;
  engine: "auto" | "onnx" | "tfjs";
  threads?: number;
  /**
   * onnx: inference worker threads, one batch in flight each (default: the cores); the tfjs
   * engine runs on this thread.
   */
  workers?: number;
  /** cpu (default) or cuda (ONNX Runtime's CUDA execution provider); checked before any work. */
  device?: string;
  /** `I/N`: embed only shard I of N (see shard.ts). */
  shard?: string;
  resume: boolean;
  force: boolean;
  checkpointSeconds: number;
  stats: boolean;
  quiet: boolean;
}

/** Peak and current resident memory in MiB from /proc/self/status (Linux), else process.memoryUsage. */
export function memoryStats(): { peakRssMiB: number; rssMiB: number } {
  try {
    const s = readFileSync("/proc/self/status", "utf8");
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(s)?.[1] ?? NaN);
    return { peakRssMiB: kb("VmHWM") / 1024, rssMiB: kb("VmRSS") / 1024 };
  } catch {
    const rss = process.memoryUsage().rss / 2 ** 20;
    return { peakRssMiB: rss, rssMiB: rss };
  }
}

export async function embedCommand(c: EmbedCommand): Promise<EmbedResult> {
  const device = parseDevice(c.device, "--device ($EQUIVAE_DEVICE)");
  const what = c.what === undefined ? undefined : parseWhat(c.what);
  const opts = {
    input: c.input,
    output: c.output,
    format: c.format,
    outputFormat: c.outputFormat,
    what,
    batchSize: c.batchSize,
    shard: c.shard === undefined ? undefined : parseShard(c.shard),
    resume: c.resume,
    force: c.force,
    checkpointSeconds: c.checkpointSeconds,
    progress: !c.quiet,
  };
  const plan = await planEmbed(opts);
  let workers: number | undefined;
  if (c.engine !== "tfjs") {
    const { defaultWorkers } = await import("../inference/workers/pool.js");
    workers = c.workers ?? defaultWorkers();
  }
  const engine = await loadEngine(c.model, { engine: c.engine, threads: c.threads, workers, device });
  let r: EmbedResult;
  try {
    r = await runEmbed(plan, engine, opts);
  } finally {
    await engine.dispose();
  }
  console.log(summaryLine(r));
  if (c.stats) {
    const m = memoryStats();
    console.log(
      JSON.stringify({
        records: r.records,
        embedded: r.embedded,
        skipped: r.skipped,
        seconds: r.seconds,
        imagesPerSecond: Math.round(r.rate),
        peakRssMiB: Math.round(m.peakRssMiB * 10) / 10,
        rssMiB: Math.round(m.rssMiB * 10) / 10,
      }),
    );
  }
  return r;
}
