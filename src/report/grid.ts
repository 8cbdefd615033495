import { GLYPH_HEIGHT, LINE_HEIGHT, textWidth } from "./font.js";
import { INK, Raster, type Rgb } from "./raster.js";

/** Nearest-neighbour upscaling of every image cell. */
export const CELL_SCALE = 2;
/** Pixels between neighbouring cells (and around the grid). */
export const CELL_GAP = 2;
/** Pixels between a column of real images and the generated ones beside it. */
export const WIDE_GAP = 8;

const GAP_COLOUR: Rgb = [255, 255, 255];
/** A cell that could not be computed (e.g. a class without a centroid). */
const MISSING_COLOUR: Rgb = [160, 160, 160];
/** Colour of labels and titles. */
export const LABEL_INK = INK;
/** Pixels around a label margin's text. */
export const LABEL_PAD = 4;
/** Most lines of one column label. */
export const MAX_LABEL_LINES = 2;
/** Widest row label (pixels); longer ones are cut. */
export const MAX_ROW_LABEL_WIDTH = 140;
/** Font scale of a grid's title. */
export const TITLE_SCALE = 2;

export interface GridOptions {
  /** Image size of one cell (before scaling). */
  height: number;
  width: number;
  channels: number;
  scale?: number;
  gap?: number;
  /** Columns after which the gap is WIDE_GAP (e.g. after a column of original images). */
  wideAfter?: number[];
  /** Text above each column ("" = none), e.g. class names; wrapped to the cell width plus a gap. */
  colLabels?: string[];
  /** Text left of each row ("" = none), right-aligned in a margin as wide as the widest. */
  rowLabels?: string[];
  /** One line above everything (TITLE_SCALE). */
  title?: string;
}

export interface GridGeometry {
  width: number;
  height: number;
  /** Left / top pixel of each column / row of cells. */
  colX: number[];
  rowY: number[];
  cellWidth: number;
  cellHeight: number;
  /** Pixels above / left of the cells taken by the title and the labels (0 without them). */
  top: number;
  left: number;
  /** Height of the title line's band (0 without a title). */
  titleHeight: number;
  /** Font scale of the column labels and the y of their first line's top. */
  colLabelScale: number;
  colLabelTop: number;
  /** Lines of each column label. */
  colLabelLines: string[][];
  /** Font scale of the row labels and the x of their right edge. */
  rowLabelScale: number;
  rowLabelRight: number;
}

/** Cuts `text` to at most `maxWidth` pixels at `scale`, ending with '.' when cut. */
export function cutLabel(text: string, maxWidth: number, scale: number): string {
  if (textWidth(text, scale) <= maxWidth) return text;
  let t = text;
  while (t.length > 1 && textWidth(t + ".", scale) > maxWidth) t = t.slice(0, -1);
  return t.length > 0 && textWidth(t + ".", scale) <= maxWidth ? t + "." : t.slice(0, 1);
}

/**
 * Lines of a label that fit `maxWidth` pixels at `scale`: the label itself when it fits, else
 * broken after spaces, '/' and '-' into at most `maxLines` lines (greedily); a line that is still
 * too wide is cut (see cutLabel), and so is the last line when words are left over.
 */
export function wrapLabel(
  text: string,
  maxWidth: number,
  scale: number,
  maxLines = MAX_LABEL_LINES,
): string[] {
  if (textWidth(text, scale) <= maxWidth) return [text];
  // Words keep their break character: "T-shirt/top" -> "T-", "shirt/", "top".
  const words = text.match(/[^ /-]*[ /-]|[^ /-]+$/g) ?? [text];
  const lines: string[] = [];
  let line = "";
  for (let i = 0; i < words.length; i++) {
    const next = line + words[i];
    if (line === "" || textWidth(next.trimEnd(), scale) <= maxWidth) {
      line = next;
      continue;
    }
    if (lines.length === maxLines - 1) {
      line = next;
      continue;
    }
    lines.push(line.trimEnd());
    line = words[i];
  }
  lines.push(line.trimEnd());
  return lines.map((l) => cutLabel(l, maxWidth, scale));
}

/** 2 when every label fits on one line of `maxWidth` at scale 2 (and there is one), else 1. */
export function labelScale(labels: string[], maxWidth: number): number {
  const some = labels.some((l) => l.length > 0);
  return some && labels.every((l) => textWidth(l, 2) <= maxWidth) ? 2 : 1;
}

/** Where every cell of a rows x cols grid goes, and the size of the whole picture. */
export function gridGeometry(rows: number, cols: number, o: GridOptions): GridGeometry {
  const scale = o.scale ?? CELL_SCALE;
  const gap = o.gap ?? CELL_GAP;
  const wide = new Set(o.wideAfter ?? []);
  const cellWidth = o.width * scale;
  const cellHeight = o.height * scale;
  const titleHeight = o.title ? LINE_HEIGHT * TITLE_SCALE + 2 * LABEL_PAD : 0;

  const colLabels = (o.colLabels ?? []).slice(0, cols);
  // A label may reach half a gap into the gaps beside its cell.
  const colLabelWidth = cellWidth + gap;
  const colLabelScale = labelScale(colLabels, colLabelWidth);
  const colLabelLines = colLabels.map((l) => (l ? wrapLabel(l, colLabelWidth, colLabelScale) : []));
  const colLines = Math.max(0, ...colLabelLines.map((l) => l.length));
  const colHeader = colLines > 0 ? colLines * LINE_HEIGHT * colLabelScale + LABEL_PAD : 0;

  const rowLabels = (o.rowLabels ?? []).slice(0, rows);
  const rowLabelScale = labelScale(rowLabels, MAX_ROW_LABEL_WIDTH);
  const rowText = Math.max(
    0,
    ...rowLabels.map((l) => textWidth(cutLabel(l, MAX_ROW_LABEL_WIDTH, rowLabelScale), rowLabelScale)),
  );
  const left = rowText > 0 ? rowText + 2 * LABEL_PAD : 0;
  const top = titleHeight + colHeader;

  const colX: number[] = [];
  let x = left + gap;
  for (let j = 0; j < cols; j++) {
    colX.push(x);
    x += cellWidth + (wide.has(j) && j < cols - 1 ? WIDE_GAP : gap);
  }
  const rowY: number[] = [];
  let y = top + gap;
  for (let i = 0; i < rows; i++) {
    rowY.push(y);
    y += cellHeight + gap;
  }
  const titleWidth = o.title ? textWidth(o.title, TITLE_SCALE) + 2 * LABEL_PAD : 0;
  return {
    width: Math.max(x, titleWidth),
    height: y,
    colX,
    rowY,
    cellWidth,
    cellHeight,
    top,
    left,
    titleHeight,
    colLabelScale,
    colLabelTop: titleHeight + LABEL_PAD,
    colLabelLines,
    rowLabelScale,
    rowLabelRight: left - LABEL_PAD,
  };
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
  if (o.title) r.text(LABEL_PAD, LABEL_PAD, o.title, LABEL_INK, TITLE_SCALE);
  g.colLabelLines.forEach((lines, j) =>
    lines.forEach((line, k) =>
      r.text(
        g.colX[j] + g.cellWidth / 2,
        g.colLabelTop + k * LINE_HEIGHT * g.colLabelScale,
        line,
        LABEL_INK,
        g.colLabelScale,
        "center",
      ),
    ),
  );
  (o.rowLabels ?? []).slice(0, rows).forEach((l, i) => {
    if (!l) return;
    const s = g.rowLabelScale;
    const text = cutLabel(l, MAX_ROW_LABEL_WIDTH, s);
    r.text(g.rowLabelRight, g.rowY[i] + (g.cellHeight - GLYPH_HEIGHT * s) / 2, text, LABEL_INK, s, "right");
  });
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
