/**
 * Progress output for long jobs: a redrawn bar with ETA and throughput on a TTY, and a
 * plain line every `intervalMs` otherwise (CI logs, files).
 */
export class Progress {
  private readonly start = Date.now();
  private lastPrint = 0;
  private done = 0;
  private readonly tty: boolean;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly unit = "img",
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly intervalMs = 10_000,
  ) {
    this.tty = Boolean(stream.isTTY);
  }

  tick(n: number, extra = ""): void {
    this.done += n;
    const now = Date.now();
    const finished = this.done >= this.total;
    const every = this.tty ? 200 : this.intervalMs;
    if (!finished && now - this.lastPrint < every) return;
    this.lastPrint = now;
    const line = this.render(extra);
    if (this.tty) this.stream.write(`\r${line}\x1b[K${finished ? "\n" : ""}`);
    else this.stream.write(`${line}\n`);
  }

  private render(extra: string): string {
    const secs = (Date.now() - this.start) / 1000;
    const rate = secs > 0 ? this.done / secs : 0;
    const frac = this.total > 0 ? Math.min(1, this.done / this.total) : 1;
    const eta = rate > 0 ? (this.total - this.done) / rate : NaN;
    const width = 24;
    const filled = Math.round(frac * width);
    const bar = "#".repeat(filled) + "-".repeat(width - filled);
    return (
      `${this.label} [${bar}] ${(frac * 100).toFixed(1).padStart(5)}% ${this.done}/${this.total} ` +
      `${rate.toFixed(1)} ${this.unit}/s ETA ${fmtDuration(eta)}${extra ? ` ${extra}` : ""}`
    );
  }
}

export function fmtDuration(s: number): string {
  if (!Number.isFinite(s)) return "--:--";
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const mm = String(m).padStart(2, "0");
  const ss = String(sec).padStart(2, "0");
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}
