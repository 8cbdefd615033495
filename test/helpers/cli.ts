import { spawnSync } from "node:child_process";
import { CLI, ROOT } from "./paths.js";

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the compiled CLI as a user would. */
export function runCli(args: string[], env: Record<string, string> = {}, timeoutMs = 600_000): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd: ROOT,
    encoding: "utf8",
    env: { ...process.env, ...env },
    timeout: timeoutMs,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
