/**
 * The models a server serves, after Triton's model repository: one folder per model (its id),
 * holding either a checkpoint (version: a short hash of its manifest.json) or numbered version
 * folders (the highest number is served). A model's new or changed version is loaded beside the
 * one serving (sha256s verified, warmed up), then swapped in at once; requests hold a lease on the
 * version they started with, and a replaced version is released when its last request is answered.
 * A version that fails to load is refused: the previous one keeps serving, and the failure is kept
 * for /v1/models, the log and a metric.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import type { ImageDecoder } from "../imaging/index.js";
import type { Engine } from "../inference/index.js";
import type { BatchQueue } from "../inference/queue.js";
import { errorMessage } from "../util/errors.js";

export type ModelState = "loading" | "ready" | "failed" | "unloaded";

/** One loaded version of a model, with its own batching queue. */
export interface ServedModel {
  id: string;
  version: string;
  engine: Engine;
  queue: BatchQueue;
  decoder: ImageDecoder;
}

export interface LoadFailure {
  version: string;
  reason: string;
  at: string;
}

export interface ModelEntry {
  id: string;
  /** The model's folder (never shown to clients). */
  dir: string;
  state: ModelState;
  current?: ServedModel;
  /** The last load that failed (kept while an older version serves). */
  failure?: LoadFailure;
}

/** Where the models come from: a repository folder, one checkpoint folder, or engines already loaded. */
export type ModelSource =
  | { kind: "repository"; root: string; load: (dir: string) => Promise<Engine> }
  | { kind: "dir"; dir: string; id?: string; load: (dir: string) => Promise<Engine> }
  | { kind: "engine"; engine: Engine; id: string; version: string };

export interface RepositoryHooks {
  /** Builds a served model (its queue and decoder) around a loaded engine. */
  serve(id: string, version: string, engine: Engine): ServedModel;
  /** Checks a freshly loaded engine (the warm-up inference); throws when it cannot serve. */
  warmUp(engine: Engine): Promise<void>;
  log(msg: string): void;
  loaded(id: string, version: string, ok: boolean): void;
}

/** A model id is a folder name: letters, digits, '.', '_' and '-', not starting with '.'. */
const MODEL_ID = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

/** A short, stable version for a checkpoint folder: the first 12 hex digits of its manifest's sha256. */
export function manifestVersion(dir: string): string {
  return createHash("sha256")
    .update(readFileSync(join(dir, "manifest.json")))
    .digest("hex")
    .slice(0, 12);
}

/** The version a model folder serves: its highest numbered version folder, else itself. */
export function resolveVersion(modelDir: string): { dir: string; version: string } {
  const numbered = readdirSync(modelDir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && /^\d+$/.test(d.name))
    .map((d) => Number(d.name))
    .sort((a, b) => b - a);
  for (const n of numbered) {
    const dir = join(modelDir, String(n));
    if (existsSync(join(dir, "manifest.json"))) return { dir, version: String(n) };
  }
  if (existsSync(join(modelDir, "manifest.json")))
    return { dir: modelDir, version: manifestVersion(modelDir) };
  throw new Error(`${basename(modelDir)}: no manifest.json, and no numbered version folder with one`);
}

export class ModelRepository {
  private readonly entries = new Map<string, ModelEntry>();
  private readonly leases = new Map<ServedModel, number>();
  private readonly retired = new Set<ServedModel>();
  private readonly loading = new Map<string, Promise<void>>();
  private hooks?: RepositoryHooks;
  private defaultId: string | undefined;

  constructor(
    readonly source: ModelSource,
    defaultModel?: string,
  ) {
    this.defaultId = defaultModel;
  }

  /** Connects the app's hooks and loads every model; resolves when each has loaded or failed. */
  async start(hooks: RepositoryHooks): Promise<void> {
    this.hooks = hooks;
    const s = this.source;
    if (s.kind === "engine") {
      this.entries.set(s.id, { id: s.id, dir: "", state: "loading" });
      this.defaultId ??= s.id;
      const entry = this.entries.get(s.id)!;
      try {
        await hooks.warmUp(s.engine);
        entry.current = hooks.serve(s.id, s.version, s.engine);
        entry.state = "ready";
        hooks.loaded(s.id, s.version, true);
      } catch (e) {
        this.fail(entry, s.version, e);
      }
      return;
    }
    for (const [id, dir] of this.scan()) this.entries.set(id, { id, dir, state: "loading" });
    if (this.defaultId !== undefined && !this.entries.has(this.defaultId))
      throw new Error(`--default-model '${this.defaultId}' is not in the repository`);
    this.defaultId ??= [...this.entries.keys()][0];
    if (this.defaultId === undefined) throw new Error(`no model in the repository ${this.rootName()}`);
    await Promise.all([...this.entries.keys()].map((id) => this.load(id).catch(() => undefined)));
  }

  private rootName(): string {
    return this.source.kind === "repository" ? basename(this.source.root) : "";
  }

  /** The model folders of the source: [id, folder]. */
  private scan(): Array<[string, string]> {
    const s = this.source;
    if (s.kind === "dir") return [[s.id ?? basename(resolve(s.dir)), resolve(s.dir)]];
    if (s.kind !== "repository") return [];
    return readdirSync(s.root, { withFileTypes: true })
      .filter((d) => d.isDirectory() && MODEL_ID.test(d.name))
      .map((d): [string, string] => [d.name, join(resolve(s.root), d.name)])
      .sort(([a], [b]) => a.localeCompare(b));
  }

  /** Whether the source has a folder for `id` (a model not loaded yet can be). */
  canLoad(id: string): boolean {
    return this.scan().some(([m]) => m === id);
  }

  get defaultModel(): string {
    return this.defaultId!;
  }

  get(id: string): ModelEntry | undefined {
    return this.entries.get(id);
  }

  list(): ModelEntry[] {
    return [...this.entries.values()];
  }

  /**
   * Loads the model's current version beside the one serving, then swaps it in (no-op when that
   * version already serves). Loads of one model run one at a time. Rejects when the version
   * cannot load; the previous version keeps serving.
   */
  load(id: string): Promise<void> {
    const prev = this.loading.get(id) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(() => this.loadNow(id));
    this.loading.set(id, next);
    void next
      .finally(() => {
        if (this.loading.get(id) === next) this.loading.delete(id);
      })
      .catch(() => undefined);
    return next;
  }

  private async loadNow(id: string): Promise<void> {
    const hooks = this.hooks!;
    const s = this.source;
    if (s.kind === "engine") return; // engines given at start cannot be reloaded
    let entry = this.entries.get(id);
    if (!entry) {
      const found = this.scan().find(([m]) => m === id);
      if (!found) throw new Error(`no model '${id}' in the repository`);
      entry = { id, dir: found[1], state: "loading" };
      this.entries.set(id, entry);
    }
    let version = "?";
    try {
      const v = resolveVersion(entry.dir);
      version = v.version;
      if (entry.current?.version === version && entry.state === "ready") return;
      if (!entry.current) entry.state = "loading";
      hooks.log(`model ${id}: loading version ${version}`);
      const engine = await s.load(v.dir);
      try {
        await hooks.warmUp(engine);
      } catch (e) {
        await engine.dispose();
        throw e;
      }
      const old = entry.current;
      entry.current = hooks.serve(id, version, engine);
      entry.state = "ready";
      entry.failure = undefined;
      hooks.loaded(id, version, true);
      hooks.log(`model ${id}: version ${version} is serving${old ? ` (replacing ${old.version})` : ""}`);
      if (old) this.retire(old);
    } catch (e) {
      this.fail(entry, version, e);
      throw e;
    }
  }

  private fail(entry: ModelEntry, version: string, e: unknown): void {
    entry.failure = { version, reason: errorMessage(e), at: new Date().toISOString() };
    if (!entry.current) entry.state = "failed";
    this.hooks!.loaded(entry.id, version, false);
    this.hooks!.log(
      `model ${entry.id}: version ${version} refused: ${entry.failure.reason}` +
        (entry.current ? ` (version ${entry.current.version} keeps serving)` : ""),
    );
  }

  /** Stops serving a model; its version is released once its last request is answered. */
  async unload(id: string): Promise<void> {
    const entry = this.entries.get(id);
    if (!entry) throw new Error(`no model '${id}'`);
    await (this.loading.get(id) ?? Promise.resolve()).catch(() => undefined);
    const old = entry.current;
    entry.current = undefined;
    entry.state = "unloaded";
    this.hooks?.log(`model ${id}: unloaded`);
    if (old) this.retire(old);
  }

  /**
   * Picks up what changed in the source: new models and new or changed versions are loaded, models
   * whose folder is gone are unloaded. Resolves with what failed (the rest was applied).
   */
  async reload(): Promise<Array<{ id: string; reason: string }>> {
    if (this.source.kind === "engine") return [];
    const found = new Map(this.scan());
    const failed: Array<{ id: string; reason: string }> = [];
    for (const id of [...this.entries.keys()])
      if (!found.has(id) && this.entries.get(id)!.state !== "unloaded") await this.unload(id);
    await Promise.all(
      [...found.keys()]
        .filter((id) => this.entries.get(id)?.state !== "unloaded")
        .map((id) => this.load(id).catch((e) => failed.push({ id, reason: errorMessage(e) }))),
    );
    return failed;
  }

  /** The version serving `id` now, held until `release` (a request finishes on the version it started with). */
  acquire(id: string): ServedModel | undefined {
    const m = this.entries.get(id)?.current;
    if (m) this.leases.set(m, (this.leases.get(m) ?? 0) + 1);
    return m;
  }

  release(m: ServedModel): void {
    const n = (this.leases.get(m) ?? 1) - 1;
    if (n > 0) return void this.leases.set(m, n);
    this.leases.delete(m);
    if (this.retired.has(m)) void this.dispose(m);
  }

  private retire(m: ServedModel): void {
    this.retired.add(m);
    if (!this.leases.has(m)) void this.dispose(m);
  }

  private async dispose(m: ServedModel): Promise<void> {
    this.retired.delete(m);
    await m.queue.idle();
    await m.engine.dispose();
  }

  /** Resolves when no served version has queued or running work. */
  async idle(): Promise<void> {
    await Promise.all(this.list().map((e) => e.current?.queue.idle()));
  }

  /** Releases every version (at shutdown, after the last request). */
  async close(): Promise<void> {
    await Promise.all([...this.loading.values()].map((p) => p.catch(() => undefined)));
    const all = [...this.list().flatMap((e) => (e.current ? [e.current] : [])), ...this.retired];
    for (const e of this.list()) e.current = undefined;
    await Promise.all(all.map((m) => this.dispose(m)));
  }
}

/** Whether a path is a folder (for flag checks). */
export function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}
