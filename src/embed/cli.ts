/** The `equivae embed` command's work: plan (cheap checks first), load the engine, run, summarise. */
import { readFileSync } from "node:fs";
import type { Device } from "../inference/device.js";
import { loadEngine } from "../inference/index.js";
import type { EngineChoice } from "../util/defaults.js";
import { parseWhat, planEmbed, runEmbed, summaryLine, type EmbedResult } from "./run.js";
import type { Shard } from "./shard.js";

/** The tests' name for the shipped default model. */
export { DEFAULT_MODEL_DIR as DEFAULT_MODEL } from "../util/defaults.js";

export interface EmbedCommand {
  input: string;
  output: string;
  format?: string;
  outputFormat?: string;
  what?: string;
  model: string;
  batchSize: number;
  engine: EngineChoice;
  threads?: number;
  /**
   * onnx: inference worker threads, one batch in flight each (default: the cores); the tfjs
   * engine runs on this thread.
   */
  workers?: number;
  /** cpu (default) or cuda (ONNX Runtime's CUDA execution provider). */
  device?: Device;
  /** Embed only shard I of N (see shard.ts). */
  shard?: Shard;
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
  const what = c.what === undefined ? undefined : parseWhat(c.what);
  const opts = {
    input: c.input,
    output: c.output,
    format: c.format,
    outputFormat: c.outputFormat,
    what,
    batchSize: c.batchSize,
    shard: c.shard,
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
  const engine = await loadEngine(c.model, {
    engine: c.engine,
    threads: c.threads,
    workers,
    device: c.device,
  });
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
