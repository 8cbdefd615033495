#!/usr/bin/env node
/** The `equivae` command line: finds the command (src/commands/index.ts) and runs it; errors become exit codes. */
import { reportError } from "./commands/exit-codes.js";
import { findCommand, topLevelUsage } from "./commands/index.js";
import { runCommand } from "./util/flags.js";

export async function main(argv: string[]): Promise<number> {
  const [first] = argv;
  if (first === undefined || first === "help" || first === "--help" || first === "-h") {
    console.log(topLevelUsage());
    return first === undefined ? 2 : 0;
  }
  try {
    const { entry, rest } = findCommand(argv);
    const { command } = await entry.load();
    await runCommand(command, rest);
    return 0;
  } catch (e) {
    return reportError(e);
  }
}

process.exitCode = await main(process.argv.slice(2));
