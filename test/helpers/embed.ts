/** Inputs for the batch-embedding tests: IDX files written in chunks, PNG/JPEG images, NDJSON. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { closeSync, openSync, readFileSync, writeSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { PNG } from "pngjs";
import jpeg from "jpeg-js";
import { parseNpyHeader } from "../../src/embed/npy.js";
import type { EmbedState } from "../../src/embed/run.js";
import { CLI, ROOT } from "./paths.js";

/** A deterministic pseudo-random byte for image i, pixel k. */
export function pixelByte(i: number, k: number): number {
  return (Math.imul(i * 784 + k + 1, 2654435761) >>> 24) & 255;
}

/** Writes a raw [n, 28, 28] IDX file 1,000 images at a time (never the whole file in memory). */
export function writeIdx(path: string, n: number, h = 28, w = 28): void {
  const fd = openSync(path, "w");
  try {
    const head = Buffer.alloc(16);
    head[2] = 0x08;
    head[3] = 3;
    head.writeUInt32BE(n, 4);
    head.writeUInt32BE(h, 8);
    head.writeUInt32BE(w, 12);
    writeSync(fd, head);
    const chunk = 1000;
    const buf = Buffer.alloc(chunk * h * w);
    for (let s = 0; s < n; s += chunk) {
      const k = Math.min(chunk, n - s);
      for (let i = 0; i < k; i++) for (let p = 0; p < h * w; p++) buf[i * h * w + p] = pixelByte(s + i, p);
      writeSync(fd, buf, 0, k * h * w);
    }
  } finally {
    closeSync(fd);
  }
}

/** A PNG of size w x h; `colour` grey (type 0), rgb (2) or rgba (6); pixel values from `seed`. */
export function pngImage(seed: number, w = 28, h = 28, colour: "grey" | "rgb" | "rgba" = "grey"): Buffer {
  const png = new PNG({ width: w, height: h });
  for (let i = 0; i < w * h; i++) {
    const g = pixelByte(seed, i);
    png.data[i * 4] = g;
    png.data[i * 4 + 1] = colour === "grey" ? g : pixelByte(seed + 1, i);
    png.data[i * 4 + 2] = colour === "grey" ? g : pixelByte(seed + 2, i);
    png.data[i * 4 + 3] = colour === "rgba" ? pixelByte(seed + 3, i) : 255;
  }
  const colorType = colour === "grey" ? 0 : colour === "rgb" ? 2 : 6;
  return PNG.sync.write(png, { colorType, inputHasAlpha: true });
}

export function jpegImage(seed: number, w = 28, h = 28): Buffer {
  const data = Buffer.alloc(w * h * 4);
  for (let i = 0; i < w * h; i++) {
    data[i * 4] = pixelByte(seed, i);
    data[i * 4 + 1] = pixelByte(seed, i) >> 1;
    data[i * 4 + 2] = 40;
    data[i * 4 + 3] = 255;
  }
  return jpeg.encode({ data, width: w, height: h }, 90).data;
}

/** A .npy file's shape and float32 data (checks the header and the data length). */
export function readNpy(path: string): { shape: number[]; data: Float32Array; headerBytes: number } {
  const b = readFileSync(path);
  const h = parseNpyHeader(b);
  if (h.descr !== "<f4" || h.fortranOrder) throw new Error(`${path}: not a C-order float32 .npy`);
  const n = h.shape.reduce((a, x) => a * x, 1);
  if (b.length - h.dataOffset !== 4 * n)
    throw new Error(`${path}: ${b.length - h.dataOffset} data bytes for shape ${h.shape}`);
  const data = new Float32Array(n);
  Buffer.from(data.buffer).set(b.subarray(h.dataOffset));
  return { shape: h.shape, data, headerBytes: h.dataOffset };
}

/** Runs the CLI and SIGKILLs it as soon as its resume state satisfies `when` (polled every `pollMs`). */
export async function runAndKill(
  args: string[],
  stateFile: string,
  when: (s: EmbedState) => boolean,
  pollMs = 5,
): Promise<EmbedState> {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  child.stdout.resume();
  let exited = false;
  const done = new Promise<void>((res) => child.on("exit", () => ((exited = true), res())));
  let killedAt: EmbedState | undefined;
  while (!exited && killedAt === undefined) {
    await sleep(pollMs);
    let s: EmbedState;
    try {
      s = JSON.parse(readFileSync(stateFile, "utf8")) as EmbedState;
    } catch {
      continue;
    }
    if (when(s)) {
      child.kill("SIGKILL");
      killedAt = s;
    }
  }
  await done;
  assert.ok(killedAt, `the run finished before it could be killed:\n${stderr}`);
  return killedAt;
}
