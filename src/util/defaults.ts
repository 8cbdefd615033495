/**
 * Defaults that the CLI and the service share. Here, not in src/serve or src/inference, so that
 * every command can import them without loading a server, an engine or TF.js.
 */
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The package root (this file is dist/src/util/defaults.js once compiled). */
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

/** The shipped default model: what `serve` and `embed` use when no model is named. */
export const DEFAULT_MODEL_DIR = resolve(PACKAGE_ROOT, "models", "mnist");

/** What --engine accepts: auto (ONNX Runtime when the checkpoint has its graphs, else TF.js), onnx, tfjs. */
export const ENGINES = ["auto", "onnx", "tfjs"] as const;
export type EngineChoice = (typeof ENGINES)[number];
