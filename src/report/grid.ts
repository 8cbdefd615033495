import { Raster, type Rgb } from "./raster.js";

/** Nearest-neighbour upscaling of every image cell. */
export const CELL_SCALE = 2;
/** Pixels between neighbouring cells (and around the grid). */
export const CELL_GAP = 2;
/** Pixels between a column of real images and the generated ones beside it. */
export const WIDE_GAP = 8;

const GAP_COLOUR: Rgb = [255, 255, 255];
/** A cell that could not be computed (e.g. a class without a centroid). */
const MISSING_COLOUR: Rgb = [160, 160, 160];

export interface GridOptions {
  /** Image size of one cell (before scaling). */
  height: number;
  width: number;
  channels: number;
  scale?: number;
  gap?: number;
  /** Columns after which the gap is WIDE_GAP (e.g. after a column of original images). */
  wideAfter?: number[];
}

export interface GridGeometry {
  width: number;
  height: number;
  /** Left / top pixel of each column / row of cells. */
  colX: number[];
  rowY: number[];
  cellWidth: number;
  cellHeight: number;
}

/** Where every cell of a rows x cols grid goes, and the size of the whole picture. */
export function gridGeometry(rows: number, cols: number, o: GridOptions): GridGeometry {
  const scale = o.scale ?? CELL_SCALE;
  const gap = o.gap ?? CELL_GAP;
  const wide = new Set(o.wideAfter ?? []);
  const cellWidth = o.width * scale;
  const cellHeight = o.height * scale;
  const colX: number[] = [];
  let x = gap;
  for (let j = 0; j < cols; j++) {
    colX.push(x);
    x += cellWidth + (wide.has(j) && j < cols - 1 ? WIDE_GAP : gap);
  }
  const rowY: number[] = [];
  let y = gap;
  for (let i = 0; i < rows; i++) {
    rowY.push(y);
    y += cellHeight + gap;
  }
  return { width: x, height: y, colX, rowY, cellWidth, cellHeight };
}

/** Probability / mean in [0, 1] to a byte (clamped; NaN is 0). */
export function toByte(p: number): number {
  if (!(p > 0)) return 0;
  if (p >= 1) return 255;
  return Math.round(p * 255);
}

/**
 * Draws a grid of images: cells[row][col] is one image, [H, W, C] row-major with values in
 * [0, 1] (null = missing, drawn grey). One channel is drawn grey, three as RGB; other channel
 * counts show their first channel.
 */
export function renderGrid(cells: Array<Array<Float32Array | null>>, o: GridOptions): Raster {
  const rows = cells.length;
  const cols = Math.max(0, ...cells.map((r) => r.length));
  if (rows === 0 || cols === 0) throw new Error("renderGrid: no cells");
  const g = gridGeometry(rows, cols, o);
  const scale = o.scale ?? CELL_SCALE;
  const { height: H, width: W, channels: C } = o;
  const r = new Raster(g.width, g.height, GAP_COLOUR);
  const px: [number, number, number] = [0, 0, 0];
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const img = cells[i][j];
      const x0 = g.colX[j];
      const y0 = g.rowY[i];
      if (!img) {
        r.fillRect(x0, y0, g.cellWidth, g.cellHeight, MISSING_COLOUR);
        continue;
      }
      if (img.length !== H * W * C) throw new Error(`renderGrid: cell ${i},${j} is not ${H}x${W}x${C}`);
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          const o2 = (y * W + x) * C;
          if (C === 3) {
            px[0] = toByte(img[o2]);
            px[1] = toByte(img[o2 + 1]);
            px[2] = toByte(img[o2 + 2]);
          } else px[0] = px[1] = px[2] = toByte(img[o2]);
          r.fillRect(x0 + x * scale, y0 + y * scale, scale, scale, px);
        }
      }
    }
  }
  return r;
}
