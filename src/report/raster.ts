import { PNG } from "pngjs";
import { ADVANCE, glyph, textWidth } from "./font.js";

export type Rgb = readonly [number, number, number];

export const WHITE: Rgb = [255, 255, 255];
export const BLACK: Rgb = [0, 0, 0];
/** The figures' text, and the frames around their plots. */
export const INK: Rgb = [30, 30, 30];
export const FRAME: Rgb = [200, 200, 200];

/** An 8-bit RGB image with a few drawing primitives (no anti-aliasing: crisp and deterministic). */
export class Raster {
  readonly data: Uint8Array;

  constructor(
    readonly width: number,
    readonly height: number,
    background: Rgb = WHITE,
  ) {
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
      throw new Error(`raster: bad size ${width}x${height}`);
    }
    this.data = new Uint8Array(width * height * 3);
    this.fillRect(0, 0, width, height, background);
  }

  /** Sets one pixel; coordinates outside the raster are ignored. */
  set(x: number, y: number, c: Rgb): void {
    x = Math.round(x);
    y = Math.round(y);
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const o = (y * this.width + x) * 3;
    this.data[o] = c[0];
    this.data[o + 1] = c[1];
    this.data[o + 2] = c[2];
  }

  get(x: number, y: number): Rgb {
    const o = (y * this.width + x) * 3;
    return [this.data[o], this.data[o + 1], this.data[o + 2]];
  }

  fillRect(x: number, y: number, w: number, h: number, c: Rgb): void {
    const x0 = Math.max(0, Math.round(x));
    const y0 = Math.max(0, Math.round(y));
    const x1 = Math.min(this.width, Math.round(x + w));
    const y1 = Math.min(this.height, Math.round(y + h));
    for (let yy = y0; yy < y1; yy++) {
      for (let xx = x0; xx < x1; xx++) {
        const o = (yy * this.width + xx) * 3;
        this.data[o] = c[0];
        this.data[o + 1] = c[1];
        this.data[o + 2] = c[2];
      }
    }
  }

  /** The rectangle's one-pixel outline. */
  strokeRect(x: number, y: number, w: number, h: number, c: Rgb): void {
    this.fillRect(x, y, w, 1, c);
    this.fillRect(x, y + h - 1, w, 1, c);
    this.fillRect(x, y, 1, h, c);
    this.fillRect(x + w - 1, y, 1, h, c);
  }

  /** A straight line (Bresenham) with a square pen of `thickness` pixels. */
  line(x0: number, y0: number, x1: number, y1: number, c: Rgb, thickness = 1): void {
    x0 = Math.round(x0);
    y0 = Math.round(y0);
    x1 = Math.round(x1);
    y1 = Math.round(y1);
    const dx = Math.abs(x1 - x0);
    const dy = -Math.abs(y1 - y0);
    const sx = x0 < x1 ? 1 : -1;
    const sy = y0 < y1 ? 1 : -1;
    const lo = -Math.floor((thickness - 1) / 2);
    let err = dx + dy;
    for (;;) {
      this.fillRect(x0 + lo, y0 + lo, thickness, thickness, c);
      if (x0 === x1 && y0 === y1) break;
      const e2 = 2 * err;
      if (e2 >= dy) {
        err += dy;
        x0 += sx;
      }
      if (e2 <= dx) {
        err += dx;
        y0 += sy;
      }
    }
  }

  /**
   * Draws `text` with the built-in 5x7 font, each font cell `scale` x `scale` pixels.
   * (x, y) is the top-left corner of the text, after alignment: `align` shifts it left by
   * 0, half or all of the text's width.
   */
  text(
    x: number,
    y: number,
    text: string,
    c: Rgb,
    scale = 1,
    align: "left" | "center" | "right" = "left",
  ): void {
    const w = textWidth(text, scale);
    let left = Math.round(align === "left" ? x : align === "center" ? x - w / 2 : x - w);
    const top = Math.round(y);
    for (const ch of text) {
      for (const [gx, gy] of glyph(ch)) this.fillRect(left + gx * scale, top + gy * scale, scale, scale, c);
      left += ADVANCE * scale;
    }
  }

  /**
   * PNG bytes: greyscale (colour type 0, from the red channel) when `grey`, else RGB (type 2).
   * pngjs and zlib are deterministic, so the same pixels always give the same bytes.
   */
  toPng(grey = false): Buffer {
    const png = new PNG({ width: this.width, height: this.height });
    const n = this.width * this.height;
    for (let i = 0; i < n; i++) {
      png.data[4 * i] = this.data[3 * i];
      png.data[4 * i + 1] = grey ? this.data[3 * i] : this.data[3 * i + 1];
      png.data[4 * i + 2] = grey ? this.data[3 * i] : this.data[3 * i + 2];
      png.data[4 * i + 3] = 255;
    }
    return PNG.sync.write(png, { colorType: grey ? 0 : 2, inputColorType: 6, inputHasAlpha: true });
  }
}
