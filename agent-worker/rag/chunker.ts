/**
 * Splits extracted, Markdown-ish text (see `extract.ts`) into chunks for embedding. Pure and
 * deterministic: the same text and options always give the same chunks, so re-ingesting
 * unchanged content yields identical chunks (and identical content hashes).
 *
 * The rules, in order:
 * 1. Sections. ATX heading lines (`#` … `######`, not inside ``` / ~~~ fences) open a section
 *    whose heading path is the stack of enclosing headings (`["Billing", "Refunds"]`). A chunk
 *    never spans two sections. A section with no text of its own is skipped when the next
 *    section is nested under it (its heading lives on in that section's path); otherwise its
 *    heading alone is a chunk, so no heading is lost.
 * 2. Prefix. A chunk of a section with a heading path starts with the path joined by " > " and a
 *    blank line, so each chunk describes itself. A path longer than a quarter of `maxTokens` is
 *    cut at a word and ends with "…".
 * 3. Budget. Every chunk's `estimateTokens(content)`, prefix included, is at most `maxTokens`.
 * 4. Splitting. Paragraphs (blank-line separated; a fenced code block is one paragraph) are
 *    packed greedily. A paragraph that does not fit in a chunk on its own is cut into sentences
 *    (list-item and table-row lines always start a new sentence), a sentence that does not fit
 *    into word runs, and a word that does not fit into character runs.
 * 5. Overlap. A chunk that continues a section starts with the whole trailing sentences of the
 *    previous chunk, as many as fit in `overlapTokens` (and leave room for new text). Word or
 *    character runs are never repeated, and nothing is repeated across sections.
 */
import { SfError } from "../../bus/index.ts";

export const SF_ERR_CHUNK_OPTIONS_INVALID = "SF_ERR_CHUNK_OPTIONS_INVALID";

export interface ChunkOptions {
  /** Most tokens (by `estimateTokens`) in one chunk, heading prefix included. Default 350, at least 16. */
  maxTokens?: number;
  /** Most tokens repeated from the previous chunk of the same section. Default 60; 0 turns overlap off; below maxTokens / 2. */
  overlapTokens?: number;
}

export interface ResolvedChunkOptions {
  readonly maxTokens: number;
  readonly overlapTokens: number;
}

export interface TextChunk {
  /** 0 … n-1 in document order. */
  index: number;
  /** The heading path line (when there is one), a blank line, then the text. */
  content: string;
  /** The enclosing headings, outermost first; empty before the first heading. */
  headingPath: string[];
  /** `estimateTokens(content)`. */
  tokens: number;
}

const MIN_MAX_TOKENS = 16;

export function parseChunkOptions(options: ChunkOptions = {}): ResolvedChunkOptions {
  const maxTokens = options.maxTokens ?? 350;
  const overlapTokens = options.overlapTokens ?? 60;
  if (!Number.isInteger(maxTokens) || maxTokens < MIN_MAX_TOKENS) {
    throw new SfError(
      SF_ERR_CHUNK_OPTIONS_INVALID,
      `chunk option maxTokens must be an integer of at least ${MIN_MAX_TOKENS}`,
      { details: { option: "maxTokens" } },
    );
  }
  if (!Number.isInteger(overlapTokens) || overlapTokens < 0 || overlapTokens >= maxTokens / 2) {
    throw new SfError(
      SF_ERR_CHUNK_OPTIONS_INVALID,
      "chunk option overlapTokens must be a non-negative integer below maxTokens / 2",
      { details: { option: "overlapTokens" } },
    );
  }
  return Object.freeze({ maxTokens, overlapTokens });
}

const CJK = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]/gu;

/**
 * A cheap, deterministic stand-in for a tokenizer count:
 *
 *   tokens = max(ceil(chars / 4), ceil(words × 4 / 3))
 *
 * where `chars` is the UTF-16 length and `words` counts whitespace-separated runs plus each
 * CJK character (those scripts have no spaces and run about a token per character). English
 * prose gives about the same number both ways; the max keeps long identifiers and URLs (many
 * characters per word) and short-word text (many words) from being underestimated. 0 for "".
 * Sub-additive up to one: estimate(a + " " + b) ≤ estimate(a) + estimate(b) + 1.
 */
export function estimateTokens(text: string): number {
  if (text === "") return 0;
  const words = (text.match(/\S+/g)?.length ?? 0) + (text.match(CJK)?.length ?? 0);
  return Math.max(Math.ceil(text.length / 4), Math.ceil((words * 4) / 3));
}

// ---------------------------------------------------------------------------------------------
// Sections and paragraphs

interface Section {
  headingPath: string[];
  /** Paragraph texts, trimmed, non-empty. */
  paragraphs: string[];
}

const HEADING_LINE = /^ {0,3}(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$/;
const FENCE_LINE = /^ {0,3}(`{3,}|~{3,})/;

function splitSections(text: string): Section[] {
  const lines = text.replace(/\r\n?/g, "\n").split("\n");
  const sections: Section[] = [];
  const stack: { level: number; text: string }[] = [];
  let current: Section = { headingPath: [], paragraphs: [] };
  let paragraph: string[] = [];
  let fence: string | null = null;
  const endParagraph = (): void => {
    const body = paragraph.join("\n").replace(/^\n+|\s+$/g, "");
    if (body.trim() !== "") current.paragraphs.push(body);
    paragraph = [];
  };
  for (const line of lines) {
    const fenceMark = FENCE_LINE.exec(line)?.[1];
    if (fence !== null) {
      paragraph.push(line);
      if (fenceMark !== undefined && fenceMark[0] === fence[0] && fenceMark.length >= fence.length) {
        fence = null;
      }
      continue;
    }
    if (fenceMark !== undefined) {
      endParagraph();
      fence = fenceMark;
      paragraph.push(line);
      continue;
    }
    const heading = HEADING_LINE.exec(line);
    if (heading?.[1] !== undefined && heading[2] !== undefined) {
      endParagraph();
      sections.push(current);
      const level = heading[1].length;
      while (stack.length > 0 && (stack[stack.length - 1]?.level ?? 0) >= level) stack.pop();
      stack.push({ level, text: heading[2].replace(/\s+/g, " ").trim() });
      current = { headingPath: stack.map((h) => h.text), paragraphs: [] };
      continue;
    }
    if (line.trim() === "") endParagraph();
    else paragraph.push(line.replace(/\s+$/u, ""));
  }
  endParagraph();
  sections.push(current);
  return sections.filter((section, i) => {
    if (section.paragraphs.length > 0) return true;
    if (section.headingPath.length === 0) return false;
    // A heading with nothing under it: dropped only when the next section nests inside it.
    const next = sections[i + 1];
    const nested =
      next !== undefined &&
      next.headingPath.length > section.headingPath.length &&
      section.headingPath.every((h, j) => next.headingPath[j] === h);
    return !nested;
  });
}

// ---------------------------------------------------------------------------------------------
// Sentences

/** Words that end with a period without ending a sentence (lowercased, period included). */
const ABBREVIATIONS = new Set([
  "e.g.",
  "i.e.",
  "cf.",
  "vs.",
  "viz.",
  "al.",
  "approx.",
  "ca.",
  "dr.",
  "mr.",
  "mrs.",
  "ms.",
  "prof.",
  "sr.",
  "jr.",
  "st.",
  "mt.",
  "no.",
  "nos.",
  "fig.",
  "figs.",
  "vol.",
  "pp.",
  "ch.",
  "sec.",
  "inc.",
  "ltd.",
  "co.",
  "corp.",
  "dept.",
  "est.",
  "jan.",
  "feb.",
  "mar.",
  "apr.",
  "jun.",
  "jul.",
  "aug.",
  "sep.",
  "sept.",
  "oct.",
  "nov.",
  "dec.",
  "u.s.",
  "u.k.",
]);

/** Candidate ends: terminal punctuation, closing quotes or brackets, then whitespace. */
const SENTENCE_END = /[.!?]+["'”’)\]]*(?=\s)/gu;

/**
 * Splits flowing text into sentences at `.`, `!` or `?` followed by whitespace, except after a
 * known abbreviation or a single-letter initial ("J."), or when the next word starts with a
 * lowercase letter ("approx. five"). Decimals ("3.5") never match: no whitespace follows the dot.
 * Whitespace inside a sentence is collapsed.
 */
export function splitSentences(text: string): string[] {
  const flat = text.replace(/\s+/gu, " ").trim();
  if (flat === "") return [];
  const sentences: string[] = [];
  let start = 0;
  for (const match of flat.matchAll(SENTENCE_END)) {
    const end = match.index + match[0].length;
    if (match[0].startsWith(".") && !match[0].startsWith("..")) {
      const wordStart = flat.lastIndexOf(" ", match.index) + 1;
      const word = flat
        .slice(wordStart, match.index + 1)
        .toLowerCase()
        .replace(/^["'“‘(\[]+/u, "");
      if (ABBREVIATIONS.has(word) || /^\p{L}\.$/u.test(word)) continue;
    }
    const next = flat.slice(end).trimStart();
    if (/^\p{Ll}/u.test(next)) continue;
    const sentence = flat.slice(start, end).trim();
    if (sentence !== "") sentences.push(sentence);
    start = end;
  }
  const rest = flat.slice(start).trim();
  if (rest !== "") sentences.push(rest);
  return sentences;
}

/** A list item (`- `, `* `, `+ `, `1. `, `1) `) or a table row (any `|`). */
const LINE_BLOCK = /^\s*(?:[-*+]\s|\d+[.)]\s)|\|/;

/** A paragraph's segments: each list-item or table-row line starts one, other lines continue it. */
function segments(paragraph: string): string[] {
  const out: string[] = [];
  for (const line of paragraph.split("\n")) {
    const last = out.length - 1;
    if (out.length === 0 || LINE_BLOCK.test(line)) out.push(line);
    else out[last] = `${out[last] ?? ""}\n${line}`;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Packing

interface Piece {
  text: string;
  /** Paragraph number within the section. */
  para: number;
  /** Segment number within the paragraph (-1: the whole paragraph, verbatim). */
  seg: number;
  /** Whole sentences (may be repeated as overlap); false for word and character runs and code. */
  whole: boolean;
}

function joinPieces(pieces: readonly Piece[]): string {
  let out = "";
  let previous: Piece | null = null;
  for (const piece of pieces) {
    if (previous !== null) {
      if (previous.para !== piece.para || previous.seg === -1 || piece.seg === -1) out += "\n\n";
      else if (previous.seg !== piece.seg) out += "\n";
      else out += " ";
    }
    out += piece.text;
    previous = piece;
  }
  return out;
}

function render(prefix: string, pieces: readonly Piece[]): string {
  const body = joinPieces(pieces);
  return prefix === "" ? body : `${prefix}\n\n${body}`;
}

/** `text` cut at a word (or a character) so that its estimate is at most `limit`, "…" appended. */
function truncateToTokens(text: string, limit: number): string {
  if (estimateTokens(text) <= limit) return text;
  const chars = Array.from(text);
  let low = 0;
  let high = chars.length;
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    if (estimateTokens(`${chars.slice(0, mid).join("").trimEnd()}…`) <= limit) low = mid;
    else high = mid - 1;
  }
  let cut = chars.slice(0, low).join("");
  const space = cut.lastIndexOf(" ");
  if (space > 0 && low < chars.length && chars[low] !== " ") cut = cut.slice(0, space);
  cut = cut.trimEnd();
  return cut === "" ? "" : `${cut}…`;
}

class SectionPacker {
  private readonly out: string[] = [];
  private current: Piece[] = [];

  constructor(
    private readonly prefix: string,
    private readonly options: ResolvedChunkOptions,
  ) {}

  private fits(pieces: readonly Piece[]): boolean {
    return estimateTokens(render(this.prefix, pieces)) <= this.options.maxTokens;
  }

  /** Pieces of one paragraph, each of which fits in a chunk on its own. */
  private pieces(paragraph: string, para: number): Piece[] {
    if (FENCE_LINE.test(paragraph)) {
      // Code: kept verbatim, never repeated as overlap, cut only where it must be.
      const code: Piece = { text: paragraph, para, seg: -1, whole: false };
      return this.fits([code]) ? [code] : this.wordRuns(paragraph, para, -1);
    }
    const whole: Piece = { text: paragraph, para, seg: -1, whole: true };
    if (this.fits([whole])) return [whole];
    const pieces: Piece[] = [];
    segments(paragraph).forEach((segment, seg) => {
      for (const sentence of splitSentences(segment)) {
        const piece: Piece = { text: sentence, para, seg, whole: true };
        if (this.fits([piece])) pieces.push(piece);
        else pieces.push(...this.wordRuns(sentence, para, seg));
      }
    });
    return pieces;
  }

  /** An over-long sentence as greedy runs of words; an over-long word as runs of characters. */
  private wordRuns(sentence: string, para: number, seg: number): Piece[] {
    const runs: Piece[] = [];
    let run: string[] = [];
    const piece = (text: string): Piece => ({ text, para, seg, whole: false });
    for (const word of sentence.split(" ")) {
      if (this.fits([piece([...run, word].join(" "))])) {
        run.push(word);
        continue;
      }
      if (run.length > 0) runs.push(piece(run.join(" ")));
      run = [];
      if (this.fits([piece(word)])) {
        run.push(word);
        continue;
      }
      const chars = Array.from(word);
      while (chars.length > 0) {
        // The longest prefix of what is left that fits (at least one character always does).
        let low = 1;
        let high = chars.length;
        while (low < high) {
          const mid = Math.ceil((low + high) / 2);
          if (this.fits([piece(chars.slice(0, mid).join(""))])) low = mid;
          else high = mid - 1;
        }
        runs.push(piece(chars.splice(0, low).join("")));
      }
    }
    if (run.length > 0) runs.push(piece(run.join(" ")));
    return runs;
  }

  /** Whole trailing sentences of `chunk` within `overlapTokens`. */
  private overlapOf(chunk: readonly Piece[]): Piece[] {
    if (this.options.overlapTokens === 0) return [];
    const sentences: Piece[] = [];
    for (const piece of chunk) {
      if (!piece.whole) {
        sentences.length = 0; // only what follows the last word run can be repeated
        continue;
      }
      if (piece.seg !== -1) {
        sentences.push(piece);
        continue;
      }
      segments(piece.text).forEach((segment, seg) => {
        for (const sentence of splitSentences(segment)) {
          sentences.push({ text: sentence, para: piece.para, seg, whole: true });
        }
      });
    }
    const overlap: Piece[] = [];
    for (let i = sentences.length - 1; i >= 0; i -= 1) {
      const candidate = [sentences[i] as Piece, ...overlap];
      if (estimateTokens(joinPieces(candidate)) > this.options.overlapTokens) break;
      overlap.unshift(sentences[i] as Piece);
    }
    return overlap;
  }

  add(paragraph: string, para: number): void {
    for (const piece of this.pieces(paragraph, para)) {
      if (this.fits([...this.current, piece])) {
        this.current.push(piece);
        continue;
      }
      const overlap = this.current.length > 0 ? this.overlapOf(this.current) : [];
      this.emit();
      // The oldest repeated sentences give way until the new piece fits beside them.
      while (overlap.length > 0 && !this.fits([...overlap, piece])) overlap.shift();
      this.current = [...overlap, piece];
    }
  }

  emit(): void {
    if (this.current.length > 0) this.out.push(render(this.prefix, this.current));
    this.current = [];
  }

  finish(): string[] {
    this.emit();
    return this.out;
  }
}

function packSection(section: Section, prefix: string, options: ResolvedChunkOptions): string[] {
  if (section.paragraphs.length === 0) return prefix === "" ? [] : [prefix];
  const packer = new SectionPacker(prefix, options);
  section.paragraphs.forEach((paragraph, i) => packer.add(paragraph, i));
  return packer.finish();
}

/** Splits `text` into chunks by the rules in the file comment. "" (or only blank lines) gives []. */
export function chunkDocument(text: string, options: ChunkOptions = {}): TextChunk[] {
  const resolved = parseChunkOptions(options);
  const chunks: TextChunk[] = [];
  for (const section of splitSections(text)) {
    const prefix = truncateToTokens(section.headingPath.join(" > "), Math.floor(resolved.maxTokens / 4));
    const contents = packSection(section, prefix, resolved);
    for (const content of contents) {
      chunks.push({
        index: chunks.length,
        content,
        headingPath: [...section.headingPath],
        tokens: estimateTokens(content),
      });
    }
  }
  return chunks;
}
