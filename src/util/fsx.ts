import { createHash } from "node:crypto";
import { createReadStream, existsSync, promises as fsp } from "node:fs";
import { basename, dirname, join } from "node:path";

export async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  await new Promise<void>((resolve, reject) => {
    createReadStream(path)
      .on("data", (c) => h.update(c))
      .on("end", () => resolve())
      .on("error", reject);
  });
  return h.digest("hex");
}

/** Writes `data` to `path` via a temporary file in the same directory, fsynced, then renamed. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}`);
  await writeFileSynced(tmp, data);
  await fsp.rename(tmp, path);
}

/** Writes a file and fsyncs it (used inside a temporary directory that is renamed afterwards). */
export async function writeFileSynced(path: string, data: string | Uint8Array): Promise<void> {
  const fh = await fsp.open(path, "w");
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Replaces directory `dest` by the fully written directory `src`.
 * POSIX has no atomic exchange of two directories in Node, so: dest -> dest.old, src -> dest,
 * then remove the old one. If the process dies between the two renames, `recoverDir(dest)`
 * (called by every reader) puts the old complete copy back.
 */
export async function replaceDir(src: string, dest: string): Promise<void> {
  const old = `${dest}.old-${process.pid}`;
  const had = existsSync(dest);
  if (had) await fsp.rename(dest, old);
  await fsp.rename(src, dest);
  if (had) await fsp.rm(old, { recursive: true, force: true });
  await fsyncDir(dirname(dest));
}

async function fsyncDir(dir: string): Promise<void> {
  try {
    const fh = await fsp.open(dir, "r");
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // Some filesystems refuse fsync on directories; the renames are still ordered.
  }
}

/**
 * If `dest` is missing but a complete `dest.old-<pid>` from an interrupted replaceDir exists,
 * restore it. A swap whose writer is still alive is in progress, not interrupted: wait for it.
 */
export async function recoverDir(dest: string): Promise<void> {
  const parent = dirname(dest);
  const prefix = `${basename(dest)}.old-`;
  for (let attempt = 0; attempt < 50 && !existsSync(dest); attempt++) {
    if (!existsSync(parent)) return;
    const olds = (await fsp.readdir(parent)).filter((n) => n.startsWith(prefix)).sort();
    if (olds.length === 0) return;
    const dead = olds.filter((n) => !processAlive(Number(n.slice(prefix.length))));
    if (dead.length > 0) {
      await fsp.rename(join(parent, dead[dead.length - 1]), dest);
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
