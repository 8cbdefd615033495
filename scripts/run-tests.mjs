#!/usr/bin/env node
// Runs the compiled test files (dist/test/**/*.test.js) with node's own test runner,
// one file at a time: several tests train models and the machines have 2 cores.
// Usage: node scripts/run-tests.mjs [name-filter ...]
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";

function find(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...find(p));
    else if (name.endsWith(".test.js")) out.push(p);
  }
  return out;
}

const filters = process.argv.slice(2);
// Only tests whose source still exists: tsc never deletes the output of a removed test file.
const files = find("dist/test")
  .filter((f) => existsSync(f.replace(/^dist[\\/]/, "").replace(/\.js$/, ".ts")))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error("no test files found under dist/test (did the build run?)");
  process.exit(1);
}
const r = spawnSync(
  process.execPath,
  ["--enable-source-maps", "--test", "--test-concurrency=1", "--test-reporter=spec", ...files],
  { stdio: "inherit" },
);
process.exit(r.status ?? 1);
