/**
 * Serving (ONNX engine) and `embed` must never load TF.js: the import rules between the source
 * folders, checked statically over every file under src/, and at run time by recording every
 * module a real `serve` and `embed` process resolve.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import ts from "typescript";
import { pngImage } from "./helpers/embed.js";
import { CLI, ROOT, tempDir } from "./helpers/paths.js";

const SRC = join(ROOT, "src");
const MODEL_DIR = join(ROOT, "models", "mnist");

interface Edge {
  /** The importing file, relative to the repository root (src/...). */
  from: string;
  specifier: string;
  /** The imported file relative to the repository root (src/... .ts), or the package name. */
  target: string;
  /** `import type`/`export type`, or an `import("...")` type: erased, never loaded. */
  typeOnly: boolean;
  /** `await import("...")`. */
  dynamic: boolean;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (name.endsWith(".ts") && !name.endsWith(".d.ts")) out.push(p);
  }
  return out;
}

function targetOf(file: string, specifier: string): string {
  if (!specifier.startsWith(".")) {
    const parts = specifier.split("/");
    return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
  }
  return relative(ROOT, resolve(dirname(file), specifier)).replace(/\.js$/, ".ts");
}

/** Every import/export-from specifier of a file, with dynamic `import("...")` and import types. */
function edgesOf(file: string): Edge[] {
  const text = readFileSync(file, "utf8");
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const from = relative(ROOT, file);
  const edges: Edge[] = [];
  const add = (spec: ts.Expression | undefined, typeOnly: boolean, dynamic: boolean) => {
    if (spec && ts.isStringLiteralLike(spec)) {
      const specifier = spec.text;
      edges.push({ from, specifier, target: targetOf(file, specifier), typeOnly, dynamic });
    }
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      const c = node.importClause;
      const named = c?.namedBindings && ts.isNamedImports(c.namedBindings) ? c.namedBindings : undefined;
      // `import { type A, type B } from` is erased too (no default or namespace import, all named are types).
      const allTypes =
        c !== undefined &&
        (c.isTypeOnly ||
          (c.name === undefined && named !== undefined && named.elements.every((e) => e.isTypeOnly)));
      add(node.moduleSpecifier, allTypes, false);
    } else if (ts.isExportDeclaration(node)) {
      const named = node.exportClause && ts.isNamedExports(node.exportClause) ? node.exportClause : undefined;
      const allTypes = node.isTypeOnly || (named !== undefined && named.elements.every((e) => e.isTypeOnly));
      add(node.moduleSpecifier, allTypes, false);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node.moduleReference.expression, node.isTypeOnly, false);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      add(node.arguments[0], false, true);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node.argument.literal as ts.Expression, true, false);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return edges;
}

const inDir = (path: string, dir: string) => path.startsWith(dir + "/");
const isTf = (target: string) => target.startsWith("@tensorflow/");
const TFJS_ENGINE = "src/inference/tfjs-engine.ts";

/** TF.js, or the training side's folders (type-only imports included: nothing of them is served). */
function heavy(e: Edge): string | undefined {
  if (isTf(e.target)) return "@tensorflow";
  if (inDir(e.target, "src/train")) return "src/train";
  if (inDir(e.target, "src/model")) return "src/model";
  return undefined;
}

type Rule = (e: Edge) => string | undefined;

/** The TF.js rules; each returns why the edge breaks it, or undefined. */
const TF_RULES: Rule[] = [
  (e) => {
    const dir = ["src/serve", "src/embed", "src/checkpoint", "src/imaging", "src/input"].find((d) =>
      inDir(e.from, d),
    );
    const h = heavy(e);
    return dir && h ? `${dir} must not import ${h}` : undefined;
  },
  (e) => {
    if (!inDir(e.from, "src/inference") || e.from === TFJS_ENGINE) return undefined;
    const h = heavy(e);
    return h ? `only ${TFJS_ENGINE} in src/inference may import ${h}` : undefined;
  },
  (e) => {
    if (e.target !== TFJS_ENGINE) return undefined;
    if (e.from === "src/inference/index.ts" && (e.dynamic || e.typeOnly)) return undefined;
    return `only src/inference/index.ts may load ${TFJS_ENGINE}, and only with await import()`;
  },
  (e) =>
    inDir(e.from, "src/export") && inDir(e.target, "src/train")
      ? "src/export must not import src/train"
      : undefined,
];

/** The loaders and the batch embedder share image decoding with the server through src/imaging, not src/serve. */
const SERVE_RULES: Rule[] = [
  (e) => {
    const dir = ["src/data", "src/embed", "src/input"].find((d) => inDir(e.from, d));
    return dir && inDir(e.target, "src/serve") ? `${dir} must not import src/serve` : undefined;
  },
];

/**
 * The CLI layer: only the dispatcher and the command modules import src/commands (libraries never
 * reach up into it); training does not reach into exporting or serving (the CLI wires them together).
 */
const LAYER_RULES: Rule[] = [
  (e) =>
    inDir(e.target, "src/commands") && e.from !== "src/cli.ts" && !inDir(e.from, "src/commands")
      ? "only src/cli.ts and src/commands import src/commands"
      : undefined,
  (e) => {
    const dir = ["src/export", "src/serve"].find((d) => inDir(e.target, d));
    return inDir(e.from, "src/train") && dir ? `src/train must not import ${dir}` : undefined;
  },
];

const ALL_EDGES = sourceFiles(SRC).flatMap(edgesOf);

function offences(edges: Edge[], rules: Rule[] = TF_RULES): string[] {
  const out: string[] = [];
  for (const e of edges) {
    for (const rule of rules) {
      const why = rule(e);
      if (why) out.push(`${e.from} -> ${e.specifier}${e.typeOnly ? " (type)" : ""}: ${why}`);
    }
  }
  return out;
}

test("import rules: the parser sees static, type-only, re-export and dynamic specifiers", () => {
  const dir = tempDir("equivae-boundary-");
  const file = join(dir, "probe.ts");
  writeFileSync(
    file,
    [
      'import * as tf from "@tensorflow/tfjs";',
      'import type { A } from "./a.js";',
      'import { type B, type C } from "./b.js";',
      'import { type D, e } from "./d.js";',
      'export { f } from "./f.js";',
      'export type { G } from "./g.js";',
      'const m = await import("./m.js");',
      'let t: import("./t.js").T;',
    ].join("\n"),
  );
  const got = edgesOf(file).map(
    (e) => `${e.specifier}:${e.typeOnly ? "type" : "value"}:${e.dynamic ? "dyn" : "static"}`,
  );
  assert.deepEqual(got, [
    "@tensorflow/tfjs:value:static",
    "./a.js:type:static",
    "./b.js:type:static",
    "./d.js:value:static",
    "./f.js:value:static",
    "./g.js:type:static",
    "./m.js:value:dyn",
    "./t.js:type:static",
  ]);
  // The rules catch each kind of offence (a made-up serve file importing the forbidden folders).
  const fake = (target: string, typeOnly = false, dynamic = false): Edge => ({
    from: "src/serve/x.ts",
    specifier: target,
    target,
    typeOnly,
    dynamic,
  });
  assert.equal(
    offences([
      fake("@tensorflow/tfjs"),
      fake("src/train/checkpoint.ts", true),
      fake("src/model/equivae.ts", false, true),
      fake("src/model/config.ts"),
      fake(TFJS_ENGINE, false, true),
    ]).length,
    5,
  );
  assert.equal(
    offences([fake("src/model/config.ts", true)]).length,
    1,
    "a type-only import of src/model counts",
  );
  assert.deepEqual(offences([fake("src/checkpoint/index.ts"), fake("src/util/errors.ts")]), []);
  assert.equal(
    offences([{ ...fake("src/serve/images.ts"), from: "src/data/folder.ts" }], SERVE_RULES).length,
    1,
  );
});

test("import rules: serving, embed, checkpoint, imaging and input never import TF.js, src/train or src/model", () => {
  assert.ok(ALL_EDGES.length > 100, `parsed only ${ALL_EDGES.length} imports under src/`);
  const bad = offences(ALL_EDGES);
  assert.deepEqual(bad, [], `import rules broken:\n  ${bad.join("\n  ")}`);
});

test("import rules: src/data, src/embed and src/input import nothing from src/serve", () => {
  const bad = offences(ALL_EDGES, SERVE_RULES);
  assert.deepEqual(bad, [], `import rules broken:\n  ${bad.join("\n  ")}`);
});

test("import rules: src/commands is imported only by the CLI; src/train imports neither src/export nor src/serve", () => {
  const fake = (from: string, target: string): Edge => ({
    from,
    specifier: target,
    target,
    typeOnly: false,
    dynamic: true,
  });
  assert.equal(
    offences(
      [
        fake("src/serve/command.ts", "src/commands/flags.ts"),
        fake("src/train/trainer.ts", "src/export/onnx.ts"),
        fake("src/train/evaluate.ts", "src/serve/config.ts"),
      ],
      LAYER_RULES,
    ).length,
    3,
  );
  assert.deepEqual(
    offences(
      [fake("src/cli.ts", "src/commands/index.ts"), fake("src/commands/train.ts", "src/train/trainer.ts")],
      LAYER_RULES,
    ),
    [],
  );
  const bad = offences(ALL_EDGES, LAYER_RULES);
  assert.deepEqual(bad, [], `import rules broken:\n  ${bad.join("\n  ")}`);
});

test("import rules: nothing TF.js is reachable from serving and embed (transitively)", () => {
  // Every module loaded at run time (static and dynamic imports, not types), except the one
  // sanctioned lazy load of the TF.js engine.
  const byFile = new Map<string, Edge[]>();
  for (const e of ALL_EDGES) byFile.set(e.from, [...(byFile.get(e.from) ?? []), e]);
  const roots = [...byFile.keys()].filter(
    (f) =>
      ["src/serve", "src/embed", "src/checkpoint", "src/imaging", "src/input", "src/inference"].some((d) =>
        inDir(f, d),
      ) && f !== TFJS_ENGINE,
  );
  const bad: string[] = [];
  for (const root of roots) {
    const seen = new Set<string>([root]);
    const queue: Array<{ file: string; path: string[] }> = [{ file: root, path: [root] }];
    while (queue.length) {
      const { file, path } = queue.shift()!;
      for (const e of byFile.get(file) ?? []) {
        if (e.typeOnly || e.target === TFJS_ENGINE) continue;
        if (isTf(e.target)) bad.push(`${[...path, e.specifier].join(" -> ")}`);
        else if (e.target.startsWith("src/") && !seen.has(e.target)) {
          seen.add(e.target);
          queue.push({ file: e.target, path: [...path, e.target] });
        }
      }
    }
  }
  assert.deepEqual(bad, [], `TF.js reachable:\n  ${bad.join("\n  ")}`);
});

/** A module-resolution hook that writes every resolved URL to $BOUNDARY_LOG (and, at exit, require.cache). */
function writeHook(dir: string): string {
  writeFileSync(
    join(dir, "hooks.mjs"),
    `import { appendFileSync } from "node:fs";
let log;
export async function initialize(data) { log = data.log; }
export async function resolve(specifier, context, nextResolve) {
  const r = await nextResolve(specifier, context);
  appendFileSync(log, "resolve " + specifier + " " + r.url + "\\n");
  return r;
}
`,
  );
  const register = join(dir, "register.mjs");
  writeFileSync(
    register,
    `import { appendFileSync } from "node:fs";
import { createRequire, register } from "node:module";
const log = process.env.BOUNDARY_LOG;
register(new URL("./hooks.mjs", import.meta.url), { data: { log } });
// CommonJS modules required by CommonJS modules do not pass the ESM hooks: list them at exit.
const require = createRequire(import.meta.url);
process.on("exit", () => {
  appendFileSync(log, Object.keys(require.cache).map((k) => "require " + k + "\\n").join(""));
});
`,
  );
  return register;
}

interface Traced {
  code: number | null;
  stdout: string;
  stderr: string;
  modules: string[];
  ms: number;
}

function traced(dir: string, name: string, args: string[]): Traced {
  const log = join(dir, `${name}.log`);
  writeFileSync(log, "");
  const t0 = Date.now();
  const r = spawnSync(
    process.execPath,
    ["--import", pathToFileURL(join(dir, "register.mjs")).href, ...args],
    {
      cwd: ROOT,
      encoding: "utf8",
      env: { ...process.env, BOUNDARY_LOG: log },
      timeout: 120_000,
    },
  );
  const modules = readFileSync(log, "utf8").split("\n").filter(Boolean);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, modules, ms: Date.now() - t0 };
}

const tfModules = (t: Traced) => t.modules.filter((m) => m.includes("@tensorflow"));
const describe = (t: Traced) => `exit ${t.code}\nstdout: ${t.stdout}\nstderr: ${t.stderr}`;

test("run time: serving with the ONNX engine and `embed --engine onnx` never load @tensorflow", () => {
  const dir = tempDir("equivae-boundary-");
  writeHook(dir);
  const dist = (p: string) => pathToFileURL(join(ROOT, "dist", p)).href;

  // (i) the server as `serve` runs it: the shipped model on the ONNX engine's worker pool; classify
  // one PNG over HTTP (the hook runs in the worker threads too: they inherit --import).
  writeFileSync(join(dir, "digit.png"), pngImage(7));
  writeFileSync(
    join(dir, "serve.mjs"),
    `import { readFileSync } from "node:fs";
import { loadEngine } from ${JSON.stringify(dist("src/inference/index.js"))};
import { startServer } from ${JSON.stringify(dist("src/serve/server.js"))};
const engine = await loadEngine(${JSON.stringify(MODEL_DIR)}, { engine: "onnx", threads: 1, workers: 2 });
const s = await startServer(engine, { port: 0, host: "127.0.0.1", handleSignals: false, info: () => {}, log: () => {} });
if (!(await s.app.ready)) throw new Error("warm-up failed");
const form = new FormData();
form.append("image", new Blob([readFileSync(${JSON.stringify(join(dir, "digit.png"))})], { type: "image/png" }), "digit.png");
const res = await fetch(s.url + "/classify", { method: "POST", body: form });
const body = await res.text();
await s.close();
console.log(JSON.stringify({ status: res.status, kind: engine.kind, body: JSON.parse(body) }));
`,
  );
  const serve = traced(dir, "serve", [join(dir, "serve.mjs")]);
  assert.equal(serve.code, 0, describe(serve));
  const out = JSON.parse(serve.stdout.trim().split("\n").pop()!);
  assert.equal(out.status, 200, serve.stdout);
  assert.equal(out.kind, "onnx");
  assert.equal(typeof out.body.predictions[0].label, "number", serve.stdout);
  // The hook saw the server's own modules (so an empty list is not mistaken for a pass).
  for (const m of [
    "onnxruntime-node",
    "express",
    "sharp",
    "dist/src/serve/server.js",
    "dist/src/checkpoint/",
    "dist/src/inference/workers/worker.js",
  ]) {
    assert.ok(
      serve.modules.some((l) => l.includes(m)),
      `hook did not see ${m}:\n${serve.modules.join("\n")}`,
    );
  }
  assert.deepEqual(tfModules(serve), [], "serving with the ONNX engine loaded TF.js");

  // (ii) the embed CLI over a folder of three PNGs.
  const pngs = join(dir, "pngs");
  mkdirSync(pngs);
  for (let i = 0; i < 3; i++) writeFileSync(join(pngs, `${i}.png`), pngImage(i));
  const npy = join(dir, "out.npy");
  const embed = traced(dir, "embed", [
    CLI,
    "embed",
    "--input",
    pngs,
    "--output",
    npy,
    "--what",
    "v",
    "--engine",
    "onnx",
    "--quiet",
  ]);
  assert.equal(embed.code, 0, describe(embed));
  assert.ok(statSync(npy).size > 128, "embed wrote no rows");
  assert.ok(
    embed.modules.some((l) => l.includes("onnxruntime-node")),
    `hook did not see onnxruntime-node:\n${embed.modules.join("\n")}`,
  );
  assert.deepEqual(tfModules(embed), [], "embed --engine onnx loaded TF.js");
});

test("run time: --help of the CLI and of every command, and serve's start-up checks, never load @tensorflow", async () => {
  const dir = tempDir("equivae-boundary-");
  writeHook(dir);
  const { COMMANDS } = await import("../src/commands/index.js");
  const helps = [["--help"], ...COMMANDS.map((c) => [...c.name.split(" "), "--help"])];
  for (const args of helps) {
    const t = traced(dir, args.join("-"), [CLI, ...args]);
    assert.equal(t.code, 0, describe(t));
    assert.ok(
      t.modules.some((l) => l.includes("dist/src/util/flags.js")),
      `hook did not see the CLI:\n${t.modules.join("\n")}`,
    );
    assert.deepEqual(tfModules(t), [], `equivae ${args.join(" ")} loaded TF.js`);
  }
  // The real serve command as far as its model check: its whole module graph loads, then it stops.
  const serve = traced(dir, "serve-cli", [CLI, "serve", "--model-dir", join(dir, "none"), "--port", "0"]);
  assert.equal(serve.code, 2, describe(serve));
  assert.match(serve.stderr, /--model-dir .*none: not a folder/);
  assert.ok(
    serve.modules.some((l) => l.includes("dist/src/serve/server.js")),
    "serve's modules did not load",
  );
  assert.deepEqual(tfModules(serve), [], "equivae serve loaded TF.js");
});

test("run time: the hook does see @tensorflow when the TF.js engine is loaded", () => {
  const dir = tempDir("equivae-boundary-");
  writeHook(dir);
  writeFileSync(
    join(dir, "tfjs.mjs"),
    `import { loadEngine } from ${JSON.stringify(pathToFileURL(join(ROOT, "dist", "src", "inference", "index.js")).href)};
const engine = await loadEngine(${JSON.stringify(MODEL_DIR)}, { engine: "tfjs" });
console.log(engine.kind);
await engine.dispose();
`,
  );
  const t = traced(dir, "tfjs", [join(dir, "tfjs.mjs")]);
  assert.equal(t.code, 0, describe(t));
  assert.equal(t.stdout.trim(), "tfjs");
  assert.ok(tfModules(t).length > 0, `the hook missed TF.js:\n${t.modules.join("\n")}`);
});
