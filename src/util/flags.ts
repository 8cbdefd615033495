/**
 * Declarative command-line flags. Each command has one table of FlagSpecs (flag, value name,
 * environment twin, default, kind, help); the same table parses argv (node:util parseArgs
 * underneath), prints `--help` and writes the README's Markdown table, so the three cannot drift.
 * A flag beats its environment twin, which beats the default. It lives in src/util, not
 * src/commands, because serving's and the report's own modules define and parse tables too.
 */
import { parseArgs } from "node:util";
import { InputError, errorMessage } from "./errors.js";

export type FlagKind = "int" | "number" | "string" | "enum" | "boolean" | "list";

export interface FlagSpec {
  flag: string;
  kind: FlagKind;
  help: string;
  /** The environment variable read when the flag is not given. */
  env?: string;
  /** The default value; undefined = none, or one the command works out (then say so in dfltText). */
  dflt?: string | number;
  /** How --help and the README show a default that is not a plain value. */
  dfltText?: string;
  /** The value's name in --help and the README (default: N for int, X for number, else VALUE). */
  arg?: string;
  required?: boolean;
  /** int: smallest accepted value (default 1); number: smallest accepted value. */
  min?: number;
  /** int: largest accepted value. */
  max?: number;
  /** number: values must be greater than this. */
  over?: number;
  /** number: values must be smaller than this. */
  below?: number;
  /** enum: the accepted values. */
  choices?: readonly string[];
  /** enum without a twin: what an error calls a value ("unknown channel count '2'"; default: the flag). */
  noun?: string;
  /** string: converts and checks the value (throwing InputError); `name` is how to call the flag. */
  parse?: (value: string, name: string) => unknown;
}

/** A flag's parsed value, by its kind (a parse function's result for strings that have one). */
export type FlagValue<F extends FlagSpec> = F extends { kind: "boolean" }
  ? boolean
  : F extends { kind: "list" }
    ? string[]
    : | (F extends { parse: (value: string, name: string) => infer R }
          ? R
          : F extends { kind: "int" | "number" }
            ? number
            : F extends { kind: "enum"; choices: readonly (infer C)[] }
              ? C
              : string)
      | (F extends { dflt: string | number } | { required: true } ? never : undefined);

/** The values of a flag table, by flag name. */
export type FlagValues<T extends readonly FlagSpec[]> = { [F in T[number] as F["flag"]]: FlagValue<F> };

export interface ParsedArgs<T extends readonly FlagSpec[]> {
  help: boolean;
  values: FlagValues<T>;
  positionals: string[];
}

export interface ParseOptions {
  /** Where environment twins are read (default process.env). */
  env?: NodeJS.ProcessEnv;
  allowPositionals?: boolean;
  /** The command's name, for the message about a missing required flag. */
  command?: string;
}

/** How errors name a flag: `--workers ($EQUIVAE_WORKERS)` when it has an environment twin. */
export function flagLabel(f: FlagSpec): string {
  return f.env ? `--${f.flag} ($${f.env})` : `--${f.flag}`;
}

/** "a", "a or b", "a, b or c". */
function orList(xs: readonly string[]): string {
  return xs.length <= 1 ? xs.join("") : `${xs.slice(0, -1).join(", ")} or ${xs[xs.length - 1]}`;
}

/** A whole decimal integer (no exponent, hex or fraction) in [min, max]; `name` is how to call it. */
export function parseInteger(s: string, name: string, min = 1, max?: number): number {
  const n = Number(s);
  const ok =
    /^[+-]?\d+$/.test(s.trim()) && Number.isSafeInteger(n) && n >= min && (max === undefined || n <= max);
  if (!ok) {
    const range = max === undefined ? `of at least ${min}` : `from ${min} to ${max}`;
    throw new InputError(`${name} must be an integer ${range} (got '${s}')`);
  }
  return n;
}

/** "in [0, 1)", "> 0", ">= 0", or "" for a number flag without bounds. */
function numberRange(f: FlagSpec): string {
  const lower = f.over !== undefined ? `(${f.over}` : `[${f.min ?? "-inf"}`;
  if (f.below !== undefined) return `in ${lower}, ${f.below})`;
  if (f.over !== undefined) return `> ${f.over}`;
  return f.min !== undefined ? `>= ${f.min}` : "";
}

function parseNumber(f: FlagSpec, s: string): number {
  const n = Number(s);
  const ok =
    s.trim() !== "" &&
    Number.isFinite(n) &&
    (f.min === undefined || n >= f.min) &&
    (f.over === undefined || n > f.over) &&
    (f.below === undefined || n < f.below);
  if (ok) return n;
  const range = numberRange(f);
  throw new InputError(`${flagLabel(f)} must be a number${range ? ` ${range}` : ""} (got '${s}')`);
}

/**
 * An enum value. A flag with an environment twin is named with it, as the value may come from
 * either: "--metrics-auth ($EQUIVAE_METRICS_AUTH) must be open or key (got 'x')"; one without says
 * "unknown likelihood 'x' (choose bernoulli or gaussian)".
 */
function parseEnum(f: FlagSpec, s: string): string {
  const choices = f.choices!;
  if (choices.includes(s)) return s;
  if (f.env) throw new InputError(`${flagLabel(f)} must be ${orList(choices)} (got '${s}')`);
  throw new InputError(`unknown ${f.noun ?? f.flag} '${s}' (choose ${orList(choices)})`);
}

/** One flag's value from its text (the flag's or its environment twin's). */
function convert(f: FlagSpec, s: string): unknown {
  if (f.kind === "int") return parseInteger(s, flagLabel(f), f.min ?? 1, f.max);
  if (f.kind === "number") return parseNumber(f, s);
  if (f.kind === "enum") return parseEnum(f, s);
  if (f.parse) return f.parse(s, flagLabel(f));
  if (s === "") throw new InputError(`${flagLabel(f)} must not be empty`);
  return s;
}

/** A list flag's items: every --flag (each may hold commas), else its comma-separated twin. */
function listItems(given: string[] | undefined, fromEnv: string | undefined): string[] {
  return (given ?? fromEnv?.split(",") ?? [])
    .flatMap((i) => i.split(","))
    .map((i) => i.trim())
    .filter((i) => i !== "");
}

type Raw = Record<string, string | string[] | boolean | undefined>;

function valueOf(f: FlagSpec, raw: Raw, env: NodeJS.ProcessEnv, command: string | undefined): unknown {
  const given = raw[f.flag];
  const fromEnv = f.env ? env[f.env] : undefined;
  if (f.kind === "boolean") return given === true;
  if (f.kind === "list") return listItems(given as string[] | undefined, fromEnv);
  const text = (given as string | undefined) ?? fromEnv;
  if (text !== undefined) return convert(f, text);
  if (f.required) {
    const prefix = command ? `${command}: ` : "";
    const see = command ? ` (see 'equivae ${command} --help')` : "";
    throw new InputError(`${prefix}--${f.flag} is required${see}`);
  }
  // A parsed flag's default goes through its parser too, so the value has the parser's type.
  return f.dflt !== undefined && f.parse ? f.parse(String(f.dflt), flagLabel(f)) : f.dflt;
}

/** Parses argv (and the environment twins) with a flag table; InputError names what is wrong. */
export function parseFlags<T extends readonly FlagSpec[]>(
  table: T,
  argv: string[],
  o: ParseOptions = {},
): ParsedArgs<T> {
  let parsed: { values: Raw; positionals: string[] };
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        ...Object.fromEntries(
          table.map((f) => [
            f.flag,
            f.kind === "boolean"
              ? { type: "boolean" as const }
              : { type: "string" as const, multiple: f.kind === "list" },
          ]),
        ),
        help: { type: "boolean", short: "h" },
      },
      allowPositionals: o.allowPositionals ?? false,
      strict: true,
    }) as typeof parsed;
  } catch (e) {
    throw new InputError(errorMessage(e).replace(/\. To specify a positional argument.*$/, ""));
  }
  const help = parsed.values.help === true;
  const env = o.env ?? process.env;
  // With --help nothing else is checked: a required flag need not be there.
  const values = help
    ? {}
    : Object.fromEntries(table.map((f) => [f.flag, valueOf(f, parsed.values, env, o.command)]));
  return { help, values: values as FlagValues<T>, positionals: parsed.positionals };
}

/** The flag with its value name, as --help and the README show it: `--out DIR`, `--resume`. */
export function flagWithArg(f: FlagSpec): string {
  if (f.kind === "boolean") return `--${f.flag}`;
  const arg = f.arg ?? (f.kind === "int" ? "N" : f.kind === "number" ? "X" : "VALUE");
  return `--${f.flag} ${arg}`;
}

/** The default as --help and the README show it ("" when there is none). */
export function defaultText(f: FlagSpec): string {
  return f.dfltText ?? (f.dflt !== undefined ? String(f.dflt) : f.required ? "required" : "");
}

/** "(default: 64; $EQUIVAE_MAX_IMAGES)", "(required)", or "" when there is nothing to say. */
function helpSuffix(f: FlagSpec): string {
  const d = defaultText(f);
  const dflt = f.required ? "required" : d === "" ? "" : `default: ${d}`;
  const said = [dflt, f.env ? `$${f.env}` : ""].filter((p) => p !== "");
  return said.length ? ` (${said.join("; ")})` : "";
}

const HELP_WIDTH = 100;
const HELP_COLUMN = 28;

/** The words of `text` in lines that fit the help's width after `indent` columns. */
export function wrapWords(text: string, indent: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line !== "" && indent + line.length + 1 + word.length > HELP_WIDTH) {
      lines.push(line);
      line = word;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  return [...lines, line];
}

/** One flag's lines of --help: the flag and its value name, then its help in a column of its own. */
function helpLines(f: FlagSpec): string[] {
  const left = `  ${flagWithArg(f)}`;
  const [first, ...rest] = wrapWords(f.help + helpSuffix(f), HELP_COLUMN);
  const more = rest.map((l) => " ".repeat(HELP_COLUMN) + l);
  // A flag too long for the column gets its help on the next line.
  if (left.length > HELP_COLUMN - 2) return [left, " ".repeat(HELP_COLUMN) + first, ...more];
  return [left.padEnd(HELP_COLUMN) + first, ...more];
}

/** What a command's --help prints, and how the README describes it. */
export interface CommandSpec<T extends readonly FlagSpec[] = readonly FlagSpec[]> {
  /** As typed after `equivae`: "train", "embed merge". */
  name: string;
  /** The synopsis: "equivae eval <checkpoint> [options]". */
  usage: string;
  /** Text between the synopsis and the flags, indented as printed. */
  intro?: string;
  flags: T;
  /** Text after the flags, indented as printed. */
  notes?: string;
  /** Positional arguments: exactly this many, or "any" (default: none). */
  positionals?: number | "any";
  run(args: { values: FlagValues<T>; positionals: string[] }): Promise<void>;
}

/** A command's --help, generated from its flag table. */
export function usageText(c: CommandSpec): string {
  const blocks = [c.usage, c.intro, c.flags.flatMap(helpLines).join("\n"), c.notes];
  return blocks.filter((b) => b !== undefined && b !== "").join("\n\n");
}

/** A Markdown table cell: pipes escaped so they do not split the row. */
function cell(s: string): string {
  return s.replace(/\|/g, "\\|");
}

/** A cell of text: also `<` escaped, so that `<out>` is not taken for an HTML tag. */
function textCell(s: string): string {
  return cell(s).replace(/</g, "&lt;");
}

/** The README's table of a flag table (an env column only when some flag has a twin). */
export function flagsMarkdown(table: readonly FlagSpec[]): string {
  const withEnv = table.some((f) => f.env);
  const row = (cols: string[]) => `| ${cols.join(" | ")} |`;
  const header = withEnv ? ["flag", "env", "default", "meaning"] : ["flag", "default", "meaning"];
  const rows = table.map((f) =>
    row([
      `\`${cell(flagWithArg(f))}\``,
      ...(withEnv ? [f.env ? `\`${f.env}\`` : ""] : []),
      textCell(defaultText(f)),
      textCell(f.help),
    ]),
  );
  return [row(header), row(header.map(() => "---")), ...rows].join("\n");
}

/** Parses argv with the command's table and runs it; --help prints the generated usage instead. */
export async function runCommand(c: CommandSpec, argv: string[]): Promise<void> {
  const args = parseFlags(c.flags, argv, { allowPositionals: c.positionals !== undefined, command: c.name });
  if (args.help) return void console.log(usageText(c));
  const n = args.positionals.length;
  if (c.positionals !== undefined && c.positionals !== "any" && n !== c.positionals)
    throw new InputError(`usage: ${c.usage} (see 'equivae ${c.name} --help')`);
  await c.run(args);
}
