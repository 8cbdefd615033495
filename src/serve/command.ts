/**
 * `equivae serve`: its flags come from one table (SERVE_FLAGS: flag, environment twin, default,
 * help), which also writes --help; a flag beats its environment variable, which beats the default.
 */
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { loadEngine } from "../inference/index.js";
import { defaultWorkers } from "../inference/workers/pool.js";
import { cudaInstallProblem, parseDevice, type Device } from "../inference/device.js";
import { InputError, StartupError, errorMessage } from "../util/errors.js";
import { DEFAULT_MODEL_DIR, LIMIT_FLAGS, SERVE_FLAGS, type FlagSpec, type Limits } from "./config.js";
import { KeyStore, type MetricsAuth } from "./auth.js";
import { parseOrigins } from "./cors.js";
import { isDir, resolveVersion, type ModelSource } from "./models.js";
import { createLogger, logFormat, logLevel, type LogFormat, type LogLevel } from "./request-log.js";
import { startServer } from "./server.js";

function defaultText(f: FlagSpec): string {
  return f.dfltText ?? (f.dflt === undefined ? "" : String(f.dflt));
}

function argName(f: FlagSpec): string {
  if (f.arg) return f.arg;
  if (f.kind === "int") return "N";
  if (f.flag === "engine") return "NAME";
  if (f.flag === "default-model") return "ID";
  return f.flag.includes("dir") || f.flag.includes("repository") ? "DIR" : "HOST";
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

type Values = Record<string, string | string[] | boolean | undefined>;

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
    throw new InputError(`--${f.flag} ($${f.env}) must be an integer >= ${min} (got '${s}')`);
  return n;
}

export interface ServeConfig {
  /** One checkpoint (when no repository is given). */
  modelDir: string;
  modelRepository?: string;
  defaultModel?: string;
  pollSecs: number;
  port: number;
  host: string;
  adminPort?: number;
  engine: "auto" | "onnx" | "tfjs";
  /** cpu, or cuda: ONNX Runtime's CUDA execution provider. */
  device: Device;
  workers: number;
  threads: number;
  maxBatchSize: number;
  maxBatchDelayUs: number;
  drainSecs: number;
  limits: Limits;
  apiKeyFile?: string;
  /** EQUIVAE_API_KEYS (an environment variable only: keys do not belong on a command line). */
  apiKeys: string[];
  metricsAuth: MetricsAuth;
  corsOrigins: string[];
  logLevel: LogLevel;
  logFormat: LogFormat;
}

/** Parses argv and the environment into the server's configuration (InputError on a bad value). */
export function parseServeConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): ServeConfig | "help" {
  let values: Values;
  try {
    values = parseArgs({
      args: argv,
      options: {
        ...Object.fromEntries(
          SERVE_FLAGS.map((f) => [f.flag, { type: "string" as const, multiple: f.kind === "list" }]),
        ),
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }).values as Values;
  } catch (e) {
    throw new InputError(errorMessage(e).replace(/\. To specify a positional argument.*$/, ""));
  }
  if (values.help) return "help";
  const get = (flag: string) => SERVE_FLAGS.find((f) => f.flag === flag)!;
  const int = (flag: string) => intValue(get(flag), raw(values, env, get(flag)));
  const str = (flag: string) => raw(values, env, get(flag)) ?? (get(flag).dflt as string | undefined);
  const engine = str("engine");
  if (engine !== "auto" && engine !== "onnx" && engine !== "tfjs")
    throw new InputError(`unknown engine '${engine}' (choose auto, onnx or tfjs)`);
  const device = parseDevice(str("device"), "--device ($EQUIVAE_DEVICE)");
  if (device !== "cpu" && engine === "tfjs")
    throw new InputError(`--device ${device} needs the onnx engine (not --engine tfjs)`);
  const limits = Object.fromEntries(LIMIT_FLAGS.map((l) => [l.key, int(l.flag)!])) as unknown as Limits;
  const repository = str("model-repository");
  if (repository !== undefined && str("model-dir") !== undefined)
    throw new InputError(
      "give --model-dir (one checkpoint) or --model-repository (a folder of models), not both",
    );
  if (limits.maxRequestPixels < limits.maxPixels)
    throw new InputError("--max-request-pixels must be at least --max-pixels");
  /** A list flag: every --flag (each may hold commas), else its comma-separated twin. */
  const list = (flag: string) => {
    const x = values[flag];
    const items = Array.isArray(x) ? x : (env[get(flag).env]?.split(",") ?? []);
    return items
      .flatMap((i) => i.split(","))
      .map((i) => i.trim())
      .filter((i) => i !== "");
  };
  const metricsAuth = str("metrics-auth");
  if (metricsAuth !== "open" && metricsAuth !== "key")
    throw new InputError(`--metrics-auth ($EQUIVAE_METRICS_AUTH) must be open or key (got '${metricsAuth}')`);
  const apiKeyFile = str("api-key-file");
  return {
    modelDir: resolve(str("model-dir") ?? DEFAULT_MODEL_DIR),
    modelRepository: repository === undefined ? undefined : resolve(repository),
    defaultModel: str("default-model"),
    pollSecs: int("poll-secs")!,
    port: int("port")!,
    host: str("host")!,
    adminPort: int("admin-port"),
    engine,
    device,
    workers: int("workers") ?? defaultWorkers(),
    threads: int("threads")!,
    maxBatchSize: int("max-batch-size")!,
    maxBatchDelayUs: int("max-batch-delay-us")!,
    drainSecs: int("drain-secs")!,
    limits,
    apiKeyFile: apiKeyFile === undefined ? undefined : resolve(apiKeyFile),
    apiKeys: (env.EQUIVAE_API_KEYS ?? "").split(",").filter((k) => k.trim() !== ""),
    metricsAuth,
    corsOrigins: parseOrigins(list("cors-origin")),
    logLevel: logLevel(str("log-level")!),
    logFormat: logFormat(str("log-format")!),
  };
}

/** The models to serve, checked before anything listens (InputError: a one-line CLI error). */
function modelSource(cfg: ServeConfig): ModelSource {
  const load = (dir: string) =>
    loadEngine(dir, {
      engine: cfg.engine,
      threads: cfg.threads,
      device: cfg.device,
      // The tfjs engine runs on the HTTP thread (a development path); onnx runs on worker threads.
      workers: cfg.engine === "tfjs" ? undefined : cfg.workers,
    });
  if (cfg.modelRepository !== undefined) {
    if (!isDir(cfg.modelRepository))
      throw new InputError(`--model-repository ${cfg.modelRepository}: not a folder`);
    return { kind: "repository", root: cfg.modelRepository, load };
  }
  if (!isDir(cfg.modelDir)) throw new InputError(`--model-dir ${cfg.modelDir}: not a folder`);
  try {
    resolveVersion(cfg.modelDir);
  } catch (e) {
    throw new InputError(`--model-dir ${cfg.modelDir}: ${errorMessage(e)}`);
  }
  return { kind: "dir", dir: cfg.modelDir, load };
}

export async function serveCommand(argv: string[]): Promise<void> {
  const cfg = parseServeConfig(argv);
  if (cfg === "help") return void console.log(serveUsage());
  // A key file that cannot be used stops the start before any model loads.
  new KeyStore({ file: cfg.apiKeyFile, keys: cfg.apiKeys });
  // So does a CUDA provider that is not installed (CUDA itself is checked when the model loads).
  const cudaProblem = cfg.device === "cuda" ? cudaInstallProblem() : undefined;
  if (cudaProblem) throw new InputError(cudaProblem);
  const source = modelSource(cfg);
  const logger = createLogger({ level: cfg.logLevel, format: cfg.logFormat });
  const srv = await startServer(source, {
    // Start-up lines, model loads and one line per request, all through the one logger.
    info: (m) => (m.startsWith("WARNING") ? logger.warn(m) : logger.info(m)),
    logger,
    apiKeyFile: cfg.apiKeyFile,
    apiKeys: cfg.apiKeys,
    metricsAuth: cfg.metricsAuth,
    corsOrigins: cfg.corsOrigins,
    port: cfg.port,
    host: cfg.host,
    adminPort: cfg.adminPort,
    limits: cfg.limits,
    defaultModel: cfg.defaultModel,
    pollSecs: cfg.pollSecs,
    maxBatchSize: cfg.maxBatchSize,
    maxBatchDelayUs: cfg.maxBatchDelayUs,
    drainSecs: cfg.drainSecs,
  });
  // One checkpoint that cannot load is a start-up error, as before; a repository keeps serving
  // the models that did load (the failures show in /v1/models).
  if (!(await srv.app.ready) && source.kind === "dir") {
    const failure = srv.app.models.list()[0]?.failure?.reason ?? srv.app.state.warmUpError;
    await srv.close(false);
    throw new StartupError(`cannot serve ${cfg.modelDir}: ${failure}`);
  }
}

/** The README's flag table of `serve` (a test keeps the README equal to it). */
export function serveFlagsMarkdown(): string {
  const rows = SERVE_FLAGS.map((f) => {
    const arg = argName(f);
    const dflt = defaultText(f);
    return `| \`--${f.flag} ${arg}\` | \`${f.env}\` | ${dflt} | ${f.help} |`;
  });
  return ["| flag | env | default | meaning |", "| --- | --- | --- | --- |", ...rows].join("\n");
}
