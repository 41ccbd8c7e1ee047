/**
 * Which of the document types we ingest an upload is, from its name, its declared content type
 * and its first bytes. Used where uploads arrive (the gateway) and where they are read (workers).
 */
import type { DocumentFileType } from "./ingest_job.ts";

const EXTENSIONS: Readonly<Record<string, DocumentFileType>> = {
  txt: "text",
  text: "text",
  md: "markdown",
  markdown: "markdown",
  html: "html",
  htm: "html",
  pdf: "pdf",
};

const CONTENT_TYPES: Readonly<Record<string, DocumentFileType>> = {
  "text/plain": "text",
  "text/markdown": "markdown",
  "text/x-markdown": "markdown",
  "text/html": "html",
  "application/xhtml+xml": "html",
  "application/pdf": "pdf",
};

/** Leading bytes of binary formats that are never text even when a name or type says so. */
const BINARY_MAGIC: readonly (readonly number[])[] = [
  [0x50, 0x4b, 0x03, 0x04], // zip: docx, xlsx, epub, …
  [0x89, 0x50, 0x4e, 0x47], // png
  [0xff, 0xd8, 0xff], // jpeg
  [0x47, 0x49, 0x46, 0x38], // gif
  [0xd0, 0xcf, 0x11, 0xe0], // OLE: doc, xls
  [0x1f, 0x8b], // gzip
];

const PDF_MAGIC = [0x25, 0x50, 0x44, 0x46, 0x2d]; // "%PDF-"

function startsWith(head: Uint8Array, magic: readonly number[], at = 0): boolean {
  if (head.length < at + magic.length) return false;
  return magic.every((byte, i) => head[at + i] === byte);
}

/** PDF readers accept the header anywhere in the first 1024 bytes. */
function looksLikePdf(head: Uint8Array): boolean {
  const end = Math.min(head.length, 1024) - PDF_MAGIC.length;
  for (let i = 0; i <= end; i += 1) if (startsWith(head, PDF_MAGIC, i)) return true;
  return false;
}

function looksBinary(head: Uint8Array): boolean {
  if (BINARY_MAGIC.some((magic) => startsWith(head, magic))) return true;
  // A NUL byte in the first KiB: not UTF-8 text (UTF-16 files land here too and are refused).
  return head.subarray(0, 1024).includes(0);
}

function looksLikeHtml(head: Uint8Array): boolean {
  const start = new TextDecoder("utf-8").decode(head.subarray(0, 256)).trimStart().toLowerCase();
  return start.startsWith("<!doctype html") || start.startsWith("<html");
}

/**
 * The type of an uploaded file, or null when it is not one we extract. Bytes that start like a
 * PDF are a PDF whatever the name says; otherwise the extension decides, then the content type
 * (its parameters, such as `charset`, are ignored), then an HTML doctype. A text type whose bytes
 * are plainly binary (zip, image, NUL bytes) is refused.
 */
export function detectFileType(
  fileName: string | null | undefined,
  contentType: string | null | undefined,
  head: Uint8Array,
): DocumentFileType | null {
  if (looksLikePdf(head)) return "pdf";
  const base = (fileName ?? "").trim().split(/[\\/]/).pop() ?? "";
  const dot = base.lastIndexOf(".");
  const extension = dot > 0 ? base.slice(dot + 1).toLowerCase() : "";
  const mime = (contentType ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
  let type: DocumentFileType | null = null;
  if (extension !== "") {
    // A known extension decides; an unknown one (.docx, .png) is not overridden by a vague type.
    type = EXTENSIONS[extension] ?? null;
    if (type === null && mime !== "" && mime !== "application/octet-stream")
      type = CONTENT_TYPES[mime] ?? null;
  } else {
    type = CONTENT_TYPES[mime] ?? null;
    if (type === null && looksLikeHtml(head)) type = "html";
  }
  if (type !== null && type !== "pdf" && looksBinary(head)) return null;
  return type;
}
