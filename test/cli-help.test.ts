/**
 * Every command's flags come from one table (src/util/flags.ts): the real CLI's --help is the text
 * generated from it and shows each flag with its value name, default and environment twin; the
 * README holds each command's generated Markdown table verbatim where it documents the command; and
 * the parser reads values, twins and defaults as the table says, with one-line errors.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadCommands, readmeFlagTable, withFlagTables } from "../src/commands/docs.js";
import { COMMANDS, findCommand, topLevelUsage } from "../src/commands/index.js";
import { InputError } from "../src/util/errors.js";
import { defaultText, flagWithArg, parseFlags, usageText, type FlagSpec } from "../src/util/flags.js";
import { runCli } from "./helpers/cli.js";
import { ROOT } from "./helpers/paths.js";

const commands = await loadCommands();
const flat = (s: string) => s.replace(/\s+/g, " ");

test("each command's --help is generated from its table and shows every flag", () => {
  assert.deepEqual(
    commands.map((c) => c.name),
    COMMANDS.map((e) => e.name),
  );
  for (const c of commands) {
    const r = runCli([...c.name.split(" "), "--help"]);
    assert.equal(r.code, 0, `equivae ${c.name} --help: ${r.stderr}`);
    assert.equal(r.stdout, `${usageText(c)}\n`, `equivae ${c.name} --help`);
    // One block per flag: its line and the wrapped lines of its help.
    const blocks = r.stdout.split(/\n(?= {2}--)/).map(flat);
    for (const f of c.flags as readonly FlagSpec[]) {
      const block = blocks.find((b) => b.startsWith(` ${flagWithArg(f)} `));
      assert.ok(block, `equivae ${c.name} --help has no line for ${flagWithArg(f)}`);
      assert.ok(block.includes(flat(f.help)), `${c.name} --${f.flag}: help text`);
      if (defaultText(f)) assert.ok(block.includes(defaultText(f)), `${c.name} --${f.flag}: default`);
      if (f.env) assert.ok(block.includes(`$${f.env}`), `${c.name} --${f.flag}: $${f.env}`);
    }
  }
  const h = runCli(["-h"]);
  assert.equal(h.code, 0);
  assert.equal(h.stdout, `${topLevelUsage()}\n`);
  for (const e of COMMANDS) assert.match(h.stdout, new RegExp(`^ {2}${e.name} +\\S`, "m"));
  assert.equal(runCli([]).code, 2, "no command: the usage and exit code 2");
});

test("the README holds each command's generated flag table where it documents the command", () => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  for (const c of commands.filter((x) => x.flags.length > 0))
    assert.ok(
      readme.includes(readmeFlagTable(c)),
      `README.md's flag table of 'equivae ${c.name}' is stale or missing: run npm run gen:cli-docs`,
    );
  // The generator rewrites a stale table in place, and says where a missing one should go.
  const train = commands.find((c) => c.name === "train")!;
  const stale = readme.replace(readmeFlagTable(train), readmeFlagTable(train).replace("| 40 |", "| 41 |"));
  assert.notEqual(stale, readme);
  assert.equal(withFlagTables(stale, commands), readme);
  assert.throws(() => withFlagTables("# no tables", commands), /no place for the flags of 'equivae train'/);
});

test("the dispatcher takes the longest command name", () => {
  assert.equal(findCommand(["embed", "merge", "--output", "x"]).entry.name, "embed merge");
  assert.deepEqual(findCommand(["embed", "--input", "merge"]).rest, ["--input", "merge"]);
  assert.throws(() => findCommand(["frobnicate"]), /unknown command 'frobnicate'/);
});

const TABLE = [
  { flag: "n", kind: "int", dflt: 3, help: "" },
  { flag: "seed", kind: "int", min: 0, max: 9, help: "" },
  { flag: "rate", kind: "number", over: 0, help: "" },
  { flag: "frac", kind: "number", min: 0, below: 1, help: "" },
  { flag: "like", kind: "enum", choices: ["a", "b"], noun: "likelihood", help: "" },
  { flag: "mode", kind: "enum", choices: ["open", "key"], env: "T_MODE", dflt: "open", help: "" },
  { flag: "workers", kind: "int", env: "T_WORKERS", help: "" },
  { flag: "name", kind: "string", help: "" },
  { flag: "upper", kind: "string", dflt: "x", parse: (s: string) => s.toUpperCase(), help: "" },
  { flag: "origin", kind: "list", env: "T_ORIGINS", help: "" },
  { flag: "quiet", kind: "boolean", help: "" },
] as const satisfies readonly FlagSpec[];

test("values come from the flag, else its environment twin, else the default, as the table's kinds say", () => {
  const parse = (argv: string[], env: NodeJS.ProcessEnv = {}) => parseFlags(TABLE, argv, { env }).values;
  const d = parse([]);
  assert.equal(d.n, 3);
  assert.equal(d.seed, undefined);
  assert.equal(d.mode, "open");
  assert.equal(d.upper, "X", "a default goes through the flag's parser");
  assert.deepEqual(d.origin, []);
  assert.equal(d.quiet, false);
  const env = { T_MODE: "key", T_WORKERS: "4", T_ORIGINS: "a, b,," };
  const e = parse([], env);
  assert.equal(e.mode, "key");
  assert.equal(e.workers, 4);
  assert.deepEqual(e.origin, ["a", "b"]);
  const f = parse(
    ["--workers", "2", "--origin", "c,d", "--origin", "e", "--quiet", "--frac", "0", "--rate", "1e-3"],
    env,
  );
  assert.equal(f.workers, 2);
  assert.deepEqual(f.origin, ["c", "d", "e"]);
  assert.equal(f.quiet, true);
  assert.equal(f.frac, 0);
  assert.equal(f.rate, 0.001);
  assert.equal(parseFlags(TABLE, ["--help"], { env: {} }).help, true);
});

/** An InputError whose whole message matches. */
const inputError = (re: RegExp) => (e: unknown) => e instanceof InputError && re.test(e.message);

test("a bad value is one InputError naming the flag (and its twin)", () => {
  const bad: Array<[string[], NodeJS.ProcessEnv, RegExp]> = [
    [["--n", "1e3"], {}, /^--n must be an integer of at least 1 \(got '1e3'\)$/],
    [["--n", "2.5"], {}, /--n must be an integer/],
    [["--seed", "10"], {}, /^--seed must be an integer from 0 to 9 \(got '10'\)$/],
    [["--rate", "0"], {}, /^--rate must be a number > 0 \(got '0'\)$/],
    [["--frac", "1"], {}, /^--frac must be a number in \[0, 1\) \(got '1'\)$/],
    [["--frac", " "], {}, /--frac must be a number/],
    [["--like", "c"], {}, /^unknown likelihood 'c' \(choose a or b\)$/],
    [[], { T_MODE: "closed" }, /^--mode \(\$T_MODE\) must be open or key \(got 'closed'\)$/],
    [[], { T_WORKERS: "0" }, /^--workers \(\$T_WORKERS\) must be an integer of at least 1 \(got '0'\)$/],
    [["--name", ""], {}, /^--name must not be empty$/],
    [["--name"], {}, /argument missing/],
    [["--bogus"], {}, /^Unknown option '--bogus'$/],
    [["stray"], {}, /Unexpected argument 'stray'/],
  ];
  for (const [argv, env, re] of bad)
    assert.throws(
      () => parseFlags(TABLE, argv, { env }),
      inputError(re),
      `${argv.join(" ")} ${JSON.stringify(env)}`,
    );
  const required = [{ flag: "out", kind: "string", required: true, help: "" }] as const;
  assert.throws(
    () => parseFlags(required, [], { command: "make-shapes" }),
    inputError(/^make-shapes: --out is required \(see 'equivae make-shapes --help'\)$/),
  );
  assert.equal(parseFlags(required, ["-h"], { command: "make-shapes" }).help, true, "--help needs no --out");
});
