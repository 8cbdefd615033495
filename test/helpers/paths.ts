import { fileURLToPath } from "node:url";
import { dirname, join, resolve } from "node:path";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";

/** The repository root (tests run from dist/test/...). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
/** ../shared/data beside the repository: the real MNIST and Fashion-MNIST IDX files. */
export const SHARED_DATA = resolve(ROOT, "..", "shared", "data");
export const MNIST_DIR = join(SHARED_DATA, "mnist");
export const FASHION_DIR = join(SHARED_DATA, "fashion-mnist");
export const CLI = join(ROOT, "dist", "src", "cli.js");

export function tempDir(prefix = "equivae-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}
