import { existsSync, promises as fsp } from "node:fs";
import { join } from "node:path";
import { InputError, errorMessage } from "../util/errors.js";
import { FILES, type EpochMetrics } from "./format.js";

/** Reads metrics.jsonl of a checkpoint, one EpochMetrics per line (missing file: no epochs). */
export async function readMetrics(dir: string): Promise<EpochMetrics[]> {
  const path = join(dir, FILES.metrics);
  if (!existsSync(path)) return [];
  const lines = (await fsp.readFile(path, "utf8")).split("\n");
  const out: EpochMetrics[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    try {
      out.push(JSON.parse(line) as EpochMetrics);
    } catch (e) {
      throw new InputError(`${path}:${i + 1}: not valid JSON (${errorMessage(e)})`);
    }
  });
  return out;
}
