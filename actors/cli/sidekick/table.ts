/**
 * Aligned text tables and key/value blocks for people; `--json` output never goes through here.
 * Widths count code points; cells wider than a column's `maxWidth` end in `…`; line breaks in a
 * cell are shown as spaces.
 */

export type Cell = string | number | boolean | null | undefined;

export interface Column {
  header: string;
  align?: "left" | "right";
  maxWidth?: number;
  /** Wraps the padded cell (colors), applied after alignment so widths stay right. */
  style?: (text: string, raw: Cell) => string;
}

function cellText(value: Cell): string {
  if (value === null || value === undefined || value === "") return "-";
  return String(value).replace(/\s*[\r\n]+\s*/g, " ");
}

function width(text: string): number {
  return [...text].length;
}

function truncate(text: string, max: number | undefined): string {
  if (max === undefined || width(text) <= max) return text;
  return `${[...text].slice(0, Math.max(1, max - 1)).join("")}…`;
}

function pad(text: string, size: number, align: "left" | "right"): string {
  const fill = " ".repeat(Math.max(0, size - width(text)));
  return align === "right" ? fill + text : text + fill;
}

export function formatTable(columns: readonly Column[], rows: readonly (readonly Cell[])[]): string {
  const texts = rows.map((row) => columns.map((c, i) => truncate(cellText(row[i]), c.maxWidth)));
  const widths = columns.map((c, i) => Math.max(width(c.header), ...texts.map((r) => width(r[i] ?? ""))));
  const line = (cells: readonly string[], raw?: readonly Cell[]): string =>
    columns
      .map((c, i) => {
        const last = i === columns.length - 1;
        const text = cells[i] ?? "";
        const padded = last && c.align !== "right" ? text : pad(text, widths[i] ?? 0, c.align ?? "left");
        return raw !== undefined && c.style !== undefined ? c.style(padded, raw[i]) : padded;
      })
      .join("  ");
  const out = [line(columns.map((c) => c.header.toUpperCase()))];
  texts.forEach((cells, r) => out.push(line(cells, rows[r])));
  return `${out.join("\n")}\n`;
}

/** `key  value` lines, keys aligned. */
export function formatPairs(pairs: ReadonlyArray<readonly [string, Cell]>): string {
  const keyWidth = Math.max(0, ...pairs.map(([k]) => width(k)));
  return `${pairs.map(([k, v]) => `${pad(k, keyWidth, "left")}  ${cellText(v)}`).join("\n")}\n`;
}
