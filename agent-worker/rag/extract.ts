/**
 * Text extraction for RAG ingestion: plain text, Markdown, HTML and PDF files become one
 * normalised, Markdown-ish text that `chunker.ts` splits. The shape of that text:
 * - headings are `#` lines (`#` … `######`, HTML h1–h6 keep their level);
 * - paragraphs are separated by one blank line, list items are `- ` lines, table rows are
 *   `cell | cell` lines;
 * - whitespace is collapsed, there is no markup, and entities are decoded.
 *
 * Every failure is `SF_ERR_DOCUMENT_UNREADABLE` (never retryable: the same bytes fail the same way)
 * with `details.file_type` and a message a person can act on. A document whose text is empty
 * after extraction is refused the same way.
 *
 * HTML is parsed with parse5 (the WHATWG algorithm, as browsers do); PDF text comes from unpdf
 * (a PDF.js build that runs in Node), loaded only when a PDF arrives.
 */
import { parse } from "parse5";
import type { DefaultTreeAdapterMap } from "parse5";
import { SfError } from "../../bus/index.ts";
import type { SfErrorOptions } from "../../bus/index.ts";

import type { DocumentFileType } from "../../actors/index.ts";

export type { DocumentFileType };
export { detectFileType } from "../../actors/index.ts";

export const SF_ERR_DOCUMENT_UNREADABLE = "SF_ERR_DOCUMENT_UNREADABLE";
/** An `ExtractOptions` value out of range (a caller's bug, not the document's fault). */
export const SF_ERR_EXTRACT_OPTIONS_INVALID = "SF_ERR_EXTRACT_OPTIONS_INVALID";

export interface ExtractedDocument {
  /** The normalised text (see the file comment); never empty. */
  text: string;
  /** `<title>` or the first h1 (HTML), the first `# ` heading (Markdown), the PDF's Title. */
  title: string | null;
  /** The page count of a PDF; null for the other types. */
  pages: number | null;
}

export interface ExtractOptions {
  /** A PDF with more pages than this is refused before any page is read. Default 2000. */
  maxPages?: number;
}

export interface ResolvedExtractOptions {
  readonly maxPages: number;
}

/** The file could not be turned into text. `details.file_type` names the type that was tried. */
export class DocumentUnreadableError extends SfError {
  override name = "DocumentUnreadableError";
  constructor(fileType: DocumentFileType, message: string, options: Omit<SfErrorOptions, "details"> = {}) {
    super(SF_ERR_DOCUMENT_UNREADABLE, message, {
      ...options,
      retryable: false,
      details: { file_type: fileType },
    });
  }
}

export function parseExtractOptions(options: ExtractOptions = {}): ResolvedExtractOptions {
  const maxPages = options.maxPages ?? 2000;
  if (!Number.isInteger(maxPages) || maxPages < 1) {
    throw new SfError(SF_ERR_EXTRACT_OPTIONS_INVALID, "extract option maxPages must be a positive integer", {
      details: { option: "maxPages" },
    });
  }
  return Object.freeze({ maxPages });
}

// ---------------------------------------------------------------------------------------------
// Extraction

/** Turns `data` into normalised text. Throws `SF_ERR_DOCUMENT_UNREADABLE` when it cannot. */
export async function extractText(
  data: Uint8Array,
  fileType: DocumentFileType,
  options: ExtractOptions = {},
): Promise<ExtractedDocument> {
  const resolved = parseExtractOptions(options);
  let doc: ExtractedDocument;
  switch (fileType) {
    case "text":
      doc = { text: normaliseText(decodeUtf8(data, fileType)), title: null, pages: null };
      break;
    case "markdown":
      doc = extractMarkdown(decodeUtf8(data, fileType));
      break;
    case "html":
      doc = extractHtml(decodeHtml(data));
      break;
    case "pdf":
      doc = await extractPdf(data, resolved.maxPages);
      break;
    default:
      throw new DocumentUnreadableError(fileType, `the file type ${String(fileType)} is not supported`);
  }
  if (doc.text.trim() === "") {
    const message =
      fileType === "pdf"
        ? "the document has no text (a PDF of scanned images needs OCR, which is not supported)"
        : "the document has no text";
    throw new DocumentUnreadableError(fileType, message);
  }
  return doc;
}

function decodeUtf8(data: Uint8Array, fileType: DocumentFileType): string {
  try {
    // fatal: invalid UTF-8 is an error rather than U+FFFD; the BOM is stripped (ignoreBOM false).
    return new TextDecoder("utf-8", { fatal: true }).decode(data);
  } catch (err) {
    throw new DocumentUnreadableError(fileType, "the file is not valid UTF-8 text", { cause: err });
  }
}

/** UTF-8 first; otherwise the charset a `<meta>` declares, else windows-1252 (the HTML default). */
function decodeHtml(data: Uint8Array): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(data);
  } catch (err) {
    // The charset declaration is ASCII within the first KiB; latin1 decodes any bytes.
    const head = new TextDecoder("latin1").decode(data.subarray(0, 1024));
    const declared = /<meta[^>]+charset\s*=\s*["']?([\w.:-]+)/i.exec(head)?.[1]?.toLowerCase();
    for (const label of [declared, "windows-1252"]) {
      if (label === undefined || label === "utf-8" || label === "utf8") continue;
      try {
        const decoder = new TextDecoder(label);
        const text = decoder.decode(data);
        return decoder.encoding === "windows-1252" ? fixWindows1252(text) : text;
      } catch (labelErr) {
        if (!(labelErr instanceof RangeError)) throw labelErr; // RangeError: unknown label, try the next
      }
    }
    // Not reached: windows-1252 decodes any bytes.
    throw new DocumentUnreadableError("html", "the HTML file is in no character set we read", { cause: err });
  }
}

/** windows-1252's 0x80–0x9F, which Node (before v23) decodes as the C1 controls of latin1. */
const WINDOWS_1252_C1 =
  "\u20ac\u0081\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\u008d\u017d\u008f" +
  "\u0090\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\u009d\u017e\u0178";

function fixWindows1252(text: string): string {
  return text.replace(/[\u0080-\u009f]/g, (c) => WINDOWS_1252_C1[c.charCodeAt(0) - 0x80] ?? c);
}

/** Line endings to \n, control characters out, trailing spaces cut, at most one blank line. */
function normaliseText(text: string): string {
  return text
    .replace(/\r\n?/g, "\n")
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, "")
    .split("\n")
    .map((line) => line.replace(/\s+$/u, ""))
    .join("\n")
    .replace(/\n{3,}/g, "\n\n")
    .trim();
}

// Markdown -------------------------------------------------------------------------------------

function extractMarkdown(source: string): ExtractedDocument {
  let text = normaliseText(source);
  // Front matter: a `---` line first, up to the next `---` or `...` line.
  const front = /^---[ \t]*\n[\s\S]*?\n(?:---|\.\.\.)[ \t]*(?:\n|$)/.exec(text);
  if (front !== null) text = text.slice(front[0].length).trim();
  const lines = text.split("\n");
  const out: string[] = [];
  let fence: string | null = null;
  for (const line of lines) {
    const fenceMark = /^\s{0,3}(`{3,}|~{3,})/.exec(line)?.[1];
    if (fenceMark !== undefined) {
      if (fence === null) fence = fenceMark[0] ?? null;
      else if (fenceMark.startsWith(fence)) fence = null;
      out.push(line);
      continue;
    }
    const previous = out[out.length - 1];
    // Setext headings (`Title` over `===` or `---`) become ATX headings, which the chunker reads.
    if (
      fence === null &&
      previous !== undefined &&
      previous.trim() !== "" &&
      !isMarkdownBlockLine(previous)
    ) {
      if (/^\s{0,3}=+\s*$/.test(line)) {
        out[out.length - 1] = `# ${previous.trim()}`;
        continue;
      }
      if (/^\s{0,3}-+\s*$/.test(line)) {
        out[out.length - 1] = `## ${previous.trim()}`;
        continue;
      }
    }
    out.push(line);
  }
  text = out.join("\n").replace(/\n{3,}/g, "\n\n");
  let title: string | null = null;
  fence = null;
  for (const line of text.split("\n")) {
    const fenceMark = /^\s{0,3}(`{3,}|~{3,})/.exec(line)?.[1];
    if (fenceMark !== undefined) fence = fence === null ? fenceMark : null;
    if (fence !== null) continue;
    const heading = /^#[ \t]+(.+?)[ \t]*#*[ \t]*$/.exec(line);
    if (heading?.[1] !== undefined) {
      title = heading[1];
      break;
    }
  }
  return { text, title, pages: null };
}

function isMarkdownBlockLine(line: string): boolean {
  return /^\s{0,3}(#{1,6}\s|[-*+]\s|\d+[.)]\s|>|\||`{3,}|~{3,})/.test(line);
}

// HTML -----------------------------------------------------------------------------------------

type HtmlNode = DefaultTreeAdapterMap["node"];
type HtmlElement = DefaultTreeAdapterMap["element"];

/** Elements whose content is never document text. */
const DROPPED = new Set([
  "head",
  "script",
  "style",
  "nav",
  "noscript",
  "template",
  "svg",
  "math",
  "iframe",
  "object",
  "embed",
  "canvas",
  "select",
  "button",
  "dialog",
]);

/** Elements that end the running paragraph before and after themselves. */
const BLOCKS = new Set([
  "address",
  "article",
  "aside",
  "blockquote",
  "body",
  "caption",
  "dd",
  "details",
  "div",
  "dl",
  "dt",
  "fieldset",
  "figcaption",
  "figure",
  "footer",
  "form",
  "header",
  "hgroup",
  "hr",
  "html",
  "legend",
  "main",
  "ol",
  "p",
  "pre",
  "section",
  "summary",
  "table",
  "tbody",
  "tfoot",
  "thead",
  "ul",
]);

const HEADING = /^h([1-6])$/;

function isElement(node: HtmlNode): node is HtmlElement {
  return "tagName" in node;
}

/** The text of a subtree with whitespace collapsed, dropped elements skipped. */
function inlineText(node: HtmlNode): string {
  if (node.nodeName === "#text") return "value" in node ? node.value : "";
  if (!("childNodes" in node)) return "";
  if (isElement(node) && DROPPED.has(node.tagName)) return "";
  let text = "";
  for (const child of node.childNodes) {
    if (isElement(child) && child.tagName === "br") text += " ";
    else text += inlineText(child);
    if (isElement(child) && (BLOCKS.has(child.tagName) || child.tagName === "li")) text += " ";
  }
  return text;
}

const collapse = (text: string): string => text.replace(/\s+/gu, " ").trim();

class HtmlTextBuilder {
  readonly blocks: { kind: "paragraph" | "heading" | "item" | "row" | "pre"; text: string }[] = [];
  private inline = "";
  private kind: "paragraph" | "item" | "row" = "paragraph";
  private prefix = "";
  private listDepth = 0;
  private cells: string[] = [];
  firstH1: string | null = null;

  walk(node: HtmlNode): void {
    if (node.nodeName === "#text") {
      // Source line breaks are plain whitespace; only <br> breaks a line.
      this.inline += ("value" in node ? node.value : "").replace(/\s+/gu, " ");
      return;
    }
    if (!isElement(node)) {
      if ("childNodes" in node) for (const child of node.childNodes) this.walk(child);
      return; // comments, doctype
    }
    const tag = node.tagName;
    if (DROPPED.has(tag)) return;
    const heading = HEADING.exec(tag);
    if (heading?.[1] !== undefined) {
      this.flush();
      const text = collapse(inlineText(node));
      if (text !== "") {
        this.blocks.push({ kind: "heading", text: `${"#".repeat(Number(heading[1]))} ${text}` });
        if (tag === "h1" && this.firstH1 === null) this.firstH1 = text;
      }
      return;
    }
    switch (tag) {
      case "br":
        this.inline += "\n";
        return;
      case "pre": {
        this.flush();
        const text = preText(node)
          .split("\n")
          .map((line) => line.replace(/\s+$/u, ""))
          .join("\n")
          .replace(/^\n+|\n+$/g, "");
        // Fenced, so the chunker keeps it whole and never reads its lines as headings.
        if (text.trim() !== "")
          this.blocks.push({ kind: "pre", text: `\`\`\`\n${text.replace(/^```/gm, "` ``")}\n\`\`\`` });
        return;
      }
      case "li": {
        this.flush();
        this.kind = "item";
        this.prefix = `${"  ".repeat(Math.max(0, this.listDepth - 1))}- `;
        this.children(node);
        this.flush();
        return;
      }
      case "ul":
      case "ol":
      case "dl":
        this.flush();
        this.listDepth += 1;
        this.children(node);
        this.listDepth -= 1;
        this.flush();
        return;
      case "tr":
        this.flush();
        this.cells = [];
        for (const child of node.childNodes) {
          if (isElement(child) && (child.tagName === "td" || child.tagName === "th")) {
            this.cells.push(collapse(inlineText(child)));
          }
        }
        if (this.cells.some((cell) => cell !== ""))
          this.blocks.push({ kind: "row", text: this.cells.join(" | ") });
        return;
      case "img": {
        return; // alt text is not document text
      }
      default:
        break;
    }
    const block = BLOCKS.has(tag);
    if (block) this.flush();
    this.children(node);
    if (block) this.flush();
  }

  private children(node: HtmlElement): void {
    // `<template>` content lives in `content`, not childNodes, so it is never walked.
    for (const child of node.childNodes) this.walk(child);
  }

  private flush(): void {
    const lines = this.inline
      .split("\n")
      .map(collapse)
      .filter((line) => line !== "");
    if (lines.length > 0) {
      const text = lines.join("\n");
      if (this.kind === "item") this.blocks.push({ kind: "item", text: `${this.prefix}${text}` });
      else this.blocks.push({ kind: "paragraph", text });
    }
    this.inline = "";
    // After a list item's own text, nested blocks of the item are plain paragraphs.
    this.kind = "paragraph";
    this.prefix = "";
  }

  finish(): string {
    this.flush();
    let out = "";
    let previous: string | null = null;
    for (const block of this.blocks) {
      if (previous !== null) {
        // Items of one list and rows of one table stay together, one per line.
        const sameRun = previous === block.kind && (block.kind === "item" || block.kind === "row");
        out += sameRun ? "\n" : "\n\n";
      }
      out += block.text;
      previous = block.kind;
    }
    return out;
  }
}

function preText(node: HtmlNode): string {
  if (node.nodeName === "#text") return "value" in node ? node.value : "";
  if (isElement(node) && node.tagName === "br") return "\n";
  if (isElement(node) && DROPPED.has(node.tagName)) return "";
  if (!("childNodes" in node)) return "";
  return node.childNodes.map(preText).join("");
}

function findElement(node: HtmlNode, tag: string): HtmlElement | null {
  if (isElement(node) && node.tagName === tag) return node;
  if (!("childNodes" in node)) return null;
  for (const child of node.childNodes) {
    const found = findElement(child, tag);
    if (found !== null) return found;
  }
  return null;
}

function extractHtml(source: string): ExtractedDocument {
  const document = parse(source);
  const builder = new HtmlTextBuilder();
  builder.walk(document);
  const text = normaliseText(builder.finish());
  const titleElement = findElement(document, "title");
  const titleText = titleElement === null ? "" : collapse(inlineText(titleElement));
  const title = titleText !== "" ? titleText : builder.firstH1;
  return { text, title, pages: null };
}

// PDF ------------------------------------------------------------------------------------------

interface PdfLine {
  text: string;
  /** Font size (the text matrix's vertical scale), in points. */
  size: number;
  /** Baseline, in points from the bottom of the page. */
  y: number;
  /** The line starts a new page or follows a gap larger than the line spacing. */
  breakBefore: boolean;
}

interface PdfTextItem {
  str: string;
  transform: number[];
  width: number;
  height: number;
  hasEOL: boolean;
}

async function extractPdf(data: Uint8Array, maxPages: number): Promise<ExtractedDocument> {
  const unreadable = (reason: string, cause?: unknown): DocumentUnreadableError =>
    new DocumentUnreadableError("pdf", `the PDF could not be read: ${reason}`, { cause });
  const { getDocumentProxy } = await import("unpdf");
  let pdf: Awaited<ReturnType<typeof getDocumentProxy>>;
  try {
    // A plain Uint8Array copy (PDF.js refuses Buffers, and may detach what it is given).
    pdf = await getDocumentProxy(new Uint8Array(data), { verbosity: 0, isEvalSupported: false });
  } catch (err) {
    const name = err instanceof Error ? err.name : "";
    if (name === "PasswordException") throw unreadable("it is password-protected", err);
    throw unreadable(err instanceof Error ? err.message : String(err), err);
  }
  try {
    const pages = pdf.numPages;
    if (pages > maxPages) {
      throw new DocumentUnreadableError(
        "pdf",
        `the PDF has ${pages} pages, more than the ${maxPages} a document may have`,
      );
    }
    const lines: PdfLine[] = [];
    let metaTitle: string | null = null;
    try {
      const meta = await pdf.getMetadata();
      const info = meta.info as Record<string, unknown> | undefined;
      const title = info?.["Title"];
      if (typeof title === "string" && title.trim() !== "") metaTitle = collapse(title);
      for (let number = 1; number <= pages; number += 1) {
        const page = await pdf.getPage(number);
        const content = await page.getTextContent();
        // Marked-content markers carry no text.
        const items = content.items.flatMap((item): PdfTextItem[] => ("str" in item ? [item] : []));
        lines.push(...pageLines(items));
        page.cleanup();
      }
    } catch (err) {
      throw unreadable(err instanceof Error ? err.message : String(err), err);
    }
    const { text, firstHeading } = pdfLinesToText(lines);
    return { text: normaliseText(text), title: metaTitle ?? firstHeading, pages };
  } finally {
    await pdf.destroy();
  }
}

/** Groups a page's text items into lines by baseline; the first line of a page breaks. */
function pageLines(items: PdfTextItem[]): PdfLine[] {
  const lines: PdfLine[] = [];
  let current: { text: string; size: number; y: number; endX: number } | null = null;
  let eol = false;
  const push = (): void => {
    if (current === null) return;
    const text = collapse(current.text);
    if (text !== "") lines.push({ text, size: current.size, y: current.y, breakBefore: lines.length === 0 });
    current = null;
  };
  for (const item of items) {
    const [, , c = 0, d = 0, x = 0, y = 0] = item.transform;
    const size = Math.hypot(c, d) || item.height || 1;
    if (item.str === "") {
      if (item.hasEOL) eol = true;
      continue;
    }
    if (current !== null && (eol || Math.abs(current.y - y) > size * 0.5)) push();
    if (current === null) {
      current = { text: item.str, size, y, endX: x + item.width };
    } else {
      const gap = x - current.endX;
      const needsSpace = gap > size * 0.15 && !/\s$/u.test(current.text) && !/^\s/u.test(item.str);
      current.text += (needsSpace ? " " : "") + item.str;
      current.size = Math.max(current.size, size);
      current.endX = x + item.width;
    }
    eol = item.hasEOL;
  }
  push();
  return lines;
}

/**
 * Lines become paragraphs (a new one after a gap wider than 1.5 × the line height, or at a change
 * of font size); short lines set at least 15 % larger than the body text become headings, the
 * largest size `#`, the next `##`, the rest `###`.
 */
function pdfLinesToText(lines: PdfLine[]): { text: string; firstHeading: string | null } {
  const round = (size: number): number => Math.round(size * 2) / 2;
  const charsBySize = new Map<number, number>();
  for (const line of lines)
    charsBySize.set(round(line.size), (charsBySize.get(round(line.size)) ?? 0) + line.text.length);
  let body = 0;
  let bodyChars = -1;
  for (const [size, chars] of [...charsBySize].sort((a, b) => a[0] - b[0])) {
    if (chars > bodyChars) [body, bodyChars] = [size, chars];
  }
  const isHeading = (line: PdfLine): boolean => round(line.size) >= body * 1.15 && line.text.length <= 120;
  const headingSizes = [...new Set(lines.filter(isHeading).map((line) => round(line.size)))].sort(
    (a, b) => b - a,
  );
  const blocks: string[] = [];
  let paragraph: string[] = [];
  let firstHeading: string | null = null;
  let previous: PdfLine | null = null;
  const flush = (): void => {
    if (paragraph.length > 0) blocks.push(paragraph.join(" "));
    paragraph = [];
  };
  for (const line of lines) {
    if (isHeading(line)) {
      flush();
      const level = Math.min(headingSizes.indexOf(round(line.size)) + 1, 3);
      // A heading set over two lines continues the previous heading.
      const last = blocks[blocks.length - 1];
      const prefix = `${"#".repeat(level)} `;
      if (
        previous !== null &&
        isHeading(previous) &&
        !line.breakBefore &&
        round(previous.size) === round(line.size) &&
        last?.startsWith(prefix) === true
      ) {
        blocks[blocks.length - 1] = `${last} ${line.text}`;
      } else {
        blocks.push(`${prefix}${line.text}`);
      }
      if (level === 1 && firstHeading === null) firstHeading = line.text;
    } else {
      const gap = previous === null ? 0 : previous.y - line.y;
      const newParagraph =
        line.breakBefore ||
        previous === null ||
        isHeading(previous) ||
        round(previous.size) !== round(line.size) ||
        gap > Math.max(previous.size, line.size) * 1.5 ||
        gap < 0;
      if (newParagraph) flush();
      paragraph.push(line.text);
    }
    previous = line;
  }
  flush();
  return { text: blocks.join("\n\n"), firstHeading };
}
