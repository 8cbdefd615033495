/** Rewrites README.md's flag table of every command from its flag table (src/commands/docs.ts). */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadCommands, withFlagTables } from "../src/commands/docs.js";
import { PACKAGE_ROOT } from "../src/util/defaults.js";

const readmePath = join(PACKAGE_ROOT, "README.md");
const before = readFileSync(readmePath, "utf8");
const after = withFlagTables(before, await loadCommands());
writeFileSync(readmePath, after);
console.log(
  after === before ? "README.md: the flag tables were up to date" : "README.md: flag tables rewritten",
);
