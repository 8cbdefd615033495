/**
 * The README's flag tables: one per command that has flags, generated from its flag table and kept
 * between two markers where the README documents the command. `npm run gen:cli-docs` rewrites them;
 * test/cli-help.test.ts fails when one is stale.
 */
import { flagsMarkdown, type CommandSpec } from "../util/flags.js";
import { COMMANDS } from "./index.js";

/** Every command of the CLI, loaded. */
export async function loadCommands(): Promise<CommandSpec<any>[]> {
  return Promise.all(COMMANDS.map(async (e) => (await e.load()).command));
}

function markers(c: CommandSpec<any>): { begin: string; end: string } {
  return {
    begin: `<!-- flags of 'equivae ${c.name}', generated from its flag table by npm run gen:cli-docs -->`,
    end: `<!-- end of the flags of 'equivae ${c.name}' -->`,
  };
}

/** A command's table between its markers, as the README holds it. */
export function readmeFlagTable(c: CommandSpec<any>): string {
  const { begin, end } = markers(c);
  return `${begin}\n${flagsMarkdown(c.flags)}\n${end}`;
}

/** The README with every command's flag table regenerated in place (Error: a command's markers are missing). */
export function withFlagTables(readme: string, commands: CommandSpec<any>[]): string {
  let text = readme;
  for (const c of commands.filter((c) => c.flags.length > 0)) {
    const { begin, end } = markers(c);
    const from = text.indexOf(begin);
    const to = text.indexOf(end, from);
    if (from < 0 || to < 0)
      throw new Error(
        `README.md has no place for the flags of 'equivae ${c.name}': add these two lines\n${begin}\n${end}`,
      );
    text = text.slice(0, from) + readmeFlagTable(c) + text.slice(to + end.length);
  }
  return text;
}
