/**
 * `equivae serve`: its configuration from one flag table (SERVE_FLAGS, src/serve/config.ts: flag,
 * environment twin, default, help), parsed by src/util/flags.ts; then the models are checked and the
 * server started. A flag beats its environment variable, which beats the default.
 */
import { resolve } from "node:path";
import { loadEngine } from "../inference/index.js";
import { defaultWorkers } from "../inference/workers/pool.js";
import { cudaInstallProblem, type Device } from "../inference/device.js";
import type { EngineChoice } from "../util/defaults.js";
import { InputError, StartupError, errorMessage } from "../util/errors.js";
import { parseFlags, type FlagValues } from "../util/flags.js";
import { DEFAULT_MODEL_DIR, LIMIT_FLAGS, SERVE_FLAGS, type Limits } from "./config.js";
import { KeyStore, type MetricsAuth } from "./auth.js";
import { parseOrigins } from "./cors.js";
import { isDir, resolveVersion, type ModelSource } from "./models.js";
import { createLogger, type LogFormat, type LogLevel } from "./request-log.js";
import { startServer } from "./server.js";

export interface ServeConfig {
  /** One checkpoint (when no repository is given). */
  modelDir: string;
  modelRepository?: string;
  defaultModel?: string;
  pollSecs: number;
  port: number;
  host: string;
  adminPort?: number;
  engine: EngineChoice;
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

/** The server's configuration from the parsed flags (InputError when they contradict each other). */
export function serveConfigFrom(v: FlagValues<typeof SERVE_FLAGS>, env: NodeJS.ProcessEnv): ServeConfig {
  if (v.device !== "cpu" && v.engine === "tfjs")
    throw new InputError(`--device ${v.device} needs the onnx engine (not --engine tfjs)`);
  const limits = Object.fromEntries(LIMIT_FLAGS.map((l) => [l.key, v[l.flag]])) as unknown as Limits;
  const repository = v["model-repository"];
  if (repository !== undefined && v["model-dir"] !== undefined)
    throw new InputError(
      "give --model-dir (one checkpoint) or --model-repository (a folder of models), not both",
    );
  if (limits.maxRequestPixels < limits.maxPixels)
    throw new InputError("--max-request-pixels must be at least --max-pixels");
  const apiKeyFile = v["api-key-file"];
  return {
    modelDir: resolve(v["model-dir"] ?? DEFAULT_MODEL_DIR),
    modelRepository: repository === undefined ? undefined : resolve(repository),
    defaultModel: v["default-model"],
    pollSecs: v["poll-secs"],
    port: v.port,
    host: v.host,
    adminPort: v["admin-port"],
    engine: v.engine,
    device: v.device,
    workers: v.workers ?? defaultWorkers(),
    threads: v.threads,
    maxBatchSize: v["max-batch-size"],
    maxBatchDelayUs: v["max-batch-delay-us"],
    drainSecs: v["drain-secs"],
    limits,
    apiKeyFile: apiKeyFile === undefined ? undefined : resolve(apiKeyFile),
    apiKeys: (env.EQUIVAE_API_KEYS ?? "").split(",").filter((k) => k.trim() !== ""),
    metricsAuth: v["metrics-auth"],
    corsOrigins: parseOrigins(v["cors-origin"]),
    logLevel: v["log-level"],
    logFormat: v["log-format"],
  };
}

/** Parses argv and the environment into the server's configuration (InputError on a bad value). */
export function parseServeConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): ServeConfig | "help" {
  const args = parseFlags(SERVE_FLAGS, argv, { env, command: "serve" });
  return args.help ? "help" : serveConfigFrom(args.values, env);
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

/** Checks the models and starts the server; resolves once it listens (it then runs until a signal). */
export async function runServe(cfg: ServeConfig): Promise<void> {
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
