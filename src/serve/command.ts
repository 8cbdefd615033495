/**
 * `equivae serve`: its flags come from one table (SERVE_FLAGS: flag, environment twin, default,
 * help), which also writes --help; a flag beats its environment variable, which beats the default.
 */
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { loadEngine } from "../inference/index.js";
import { defaultWorkers } from "../inference/workers/pool.js";
import { UserError, errorMessage } from "../util/errors.js";
import { DEFAULT_MODEL_DIR, LIMIT_FLAGS, SERVE_FLAGS, type FlagSpec, type Limits } from "./config.js";
import { startServer } from "./server.js";

function defaultText(f: FlagSpec): string {
  return f.dfltText ?? (f.dflt === undefined ? "" : String(f.dflt));
}

function argName(f: FlagSpec): string {
  if (f.kind === "int") return "N";
  return f.flag === "engine" ? "NAME" : f.flag.includes("dir") ? "DIR" : "HOST";
}

/** --help, generated from SERVE_FLAGS. */
export function serveUsage(): string {
  const lines = SERVE_FLAGS.map((f) => {
    const left = `  --${f.flag} ${argName(f)}`;
    const d = defaultText(f);
    const dflt = d === "" ? "" : `default: ${d}; `;
    return `${left.padEnd(28)}${f.help} (${dflt}$${f.env})`;
  });
  return `equivae serve [options]

${lines.join("\n")}

  Decoding and inference run on --workers threads (onnx engine); this thread parses, admits,
  batches and replies. SIGTERM / SIGINT: /readyz answers 503 for --drain-secs while requests are
  still served, then the listener closes, in-flight requests finish, and the process exits 0.`;
}

type Values = Record<string, string | boolean | undefined>;

/** A flag's value: the flag, else its environment twin, else undefined. */
function raw(v: Values, env: NodeJS.ProcessEnv, f: FlagSpec): string | undefined {
  const x = v[f.flag];
  return typeof x === "string" ? x : env[f.env];
}

function intValue(f: FlagSpec, s: string | undefined): number | undefined {
  if (s === undefined) return typeof f.dflt === "number" ? f.dflt : undefined;
  const n = Number(s);
  const min = f.min ?? 1;
  if (s.trim() === "" || !Number.isInteger(n) || n < min)
    throw new UserError(`--${f.flag} ($${f.env}) must be an integer >= ${min} (got '${s}')`);
  return n;
}

export interface ServeConfig {
  modelDir: string;
  port: number;
  host: string;
  adminPort?: number;
  engine: "auto" | "onnx" | "tfjs";
  workers: number;
  threads: number;
  maxBatchSize: number;
  maxBatchDelayUs: number;
  drainSecs: number;
  limits: Limits;
}

/** Parses argv and the environment into the server's configuration (UserError on a bad value). */
export function parseServeConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): ServeConfig | "help" {
  let values: Values;
  try {
    values = parseArgs({
      args: argv,
      options: {
        ...Object.fromEntries(SERVE_FLAGS.map((f) => [f.flag, { type: "string" as const }])),
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }).values as Values;
  } catch (e) {
    throw new UserError(errorMessage(e).replace(/\. To specify a positional argument.*$/, ""));
  }
  if (values.help) return "help";
  const get = (flag: string) => SERVE_FLAGS.find((f) => f.flag === flag)!;
  const int = (flag: string) => intValue(get(flag), raw(values, env, get(flag)));
  const str = (flag: string) => raw(values, env, get(flag)) ?? (get(flag).dflt as string | undefined);
  const engine = str("engine");
  if (engine !== "auto" && engine !== "onnx" && engine !== "tfjs")
    throw new UserError(`unknown engine '${engine}' (choose auto, onnx or tfjs)`);
  const limits = Object.fromEntries(LIMIT_FLAGS.map((l) => [l.key, int(l.flag)!])) as unknown as Limits;
  if (limits.maxRequestPixels < limits.maxPixels)
    throw new UserError("--max-request-pixels must be at least --max-pixels");
  return {
    modelDir: resolve(str("model-dir") ?? DEFAULT_MODEL_DIR),
    port: int("port")!,
    host: str("host")!,
    adminPort: int("admin-port"),
    engine,
    workers: int("workers") ?? defaultWorkers(),
    threads: int("threads")!,
    maxBatchSize: int("max-batch-size")!,
    maxBatchDelayUs: int("max-batch-delay-us")!,
    drainSecs: int("drain-secs")!,
    limits,
  };
}

export async function serveCommand(argv: string[]): Promise<void> {
  const cfg = parseServeConfig(argv);
  if (cfg === "help") return void console.log(serveUsage());
  const engine = await loadEngine(cfg.modelDir, {
    engine: cfg.engine,
    threads: cfg.threads,
    // The tfjs engine runs on this thread (a development path); onnx runs on the worker pool.
    workers: cfg.engine === "tfjs" ? undefined : cfg.workers,
  });
  const pooled = (engine as { workers?: number }).workers;
  await startServer(engine, {
    port: cfg.port,
    host: cfg.host,
    adminPort: cfg.adminPort,
    limits: cfg.limits,
    modelDir: cfg.modelDir,
    engineConcurrency: pooled ?? 1,
    maxBatchSize: cfg.maxBatchSize,
    maxBatchDelayUs: cfg.maxBatchDelayUs,
    drainSecs: cfg.drainSecs,
  });
}

/** The README's flag table of `serve` (a test keeps the README equal to it). */
export function serveFlagsMarkdown(): string {
  const rows = SERVE_FLAGS.map((f) => {
    const arg =
      f.kind === "int" ? "N" : f.flag === "engine" ? "NAME" : f.flag.includes("dir") ? "DIR" : "HOST";
    const dflt = defaultText(f);
    return `| \`--${f.flag} ${arg}\` | \`${f.env}\` | ${dflt} | ${f.help} |`;
  });
  return ["| flag | env | default | meaning |", "| --- | --- | --- | --- |", ...rows].join("\n");
}
