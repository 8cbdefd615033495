/**
 * Folders of images, walked the same way by the training loader (src/data/folder.ts: one folder
 * per class) and by `embed` (src/embed/sources.ts: a whole tree): the same image extensions, the
 * same order (each directory's names by Unicode code point, depth-first) and the same entries left
 * out (hidden ones, named ".*": .git, .DS_Store, macOS's ._ copies).
 */
import { promises as fsp, type Dirent } from "node:fs";
import { extname, join } from "node:path";
import { InputError, errorMessage } from "../util/errors.js";

export const IMAGE_EXTENSIONS = [".png", ".jpg", ".jpeg", ".webp", ".gif"];

/** Whether a file name ends in one of IMAGE_EXTENSIONS (in any case). */
export function isImageName(name: string): boolean {
  return IMAGE_EXTENSIONS.includes(extname(name).toLowerCase());
}

/** Orders names by Unicode code point (UTF-8 byte order), not by UTF-16 unit as Array.sort does. */
export function compareCodePoints(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

export interface FolderEntry {
  /** The path below the root, "/"-separated. */
  rel: string;
  kind: "dir" | "file";
  /** A directory that could not be listed: nothing below it is walked. */
  error?: string;
}

/**
 * Walks the directories and files below `root`, depth-first: each directory before its contents,
 * every directory's entries in code-point order, `levels` levels deep (default: all). Links are
 * followed, except back into a directory the walk is inside (a cycle); a broken link counts as a
 * file, so that reading it says what is wrong.
 */
export function walkFolder(root: string, levels = Infinity): AsyncGenerator<FolderEntry> {
  return walkDir(root, "", [], levels);
}

async function* walkDir(
  root: string,
  rel: string,
  outer: string[],
  levels: number,
): AsyncGenerator<FolderEntry> {
  if (levels === 0) {
    yield { rel, kind: "dir" };
    return;
  }
  const dir = rel === "" ? root : join(root, rel);
  let real: string;
  let entries: Dirent[];
  try {
    real = await fsp.realpath(dir);
    entries = await listDir(dir);
  } catch (e) {
    const error = `cannot list directory (${errorMessage(e)})`;
    if (rel === "") throw new InputError(`${root}: ${error}`);
    yield { rel, kind: "dir", error };
    return;
  }
  if (outer.includes(real)) return;
  if (rel !== "") yield { rel, kind: "dir" };
  for (const e of entries) {
    const path = rel === "" ? e.name : `${rel}/${e.name}`;
    const kind = await kindOf(dir, e);
    if (kind === "dir") yield* walkDir(root, path, [...outer, real], levels - 1);
    else if (kind === "file") yield { rel: path, kind };
  }
}

/** A directory's entries, hidden ones left out, in code-point order. */
async function listDir(dir: string): Promise<Dirent[]> {
  const entries = await fsp.readdir(dir, { withFileTypes: true });
  return entries.filter((e) => !e.name.startsWith(".")).sort((a, b) => compareCodePoints(a.name, b.name));
}

/** What an entry is, through a link; sockets, FIFOs and devices are neither. */
async function kindOf(dir: string, e: Dirent): Promise<FolderEntry["kind"] | undefined> {
  if (e.isDirectory()) return "dir";
  if (e.isFile()) return "file";
  if (!e.isSymbolicLink()) return undefined;
  try {
    const st = await fsp.stat(join(dir, e.name));
    if (st.isDirectory()) return "dir";
    return st.isFile() ? "file" : undefined;
  } catch {
    return "file";
  }
}
