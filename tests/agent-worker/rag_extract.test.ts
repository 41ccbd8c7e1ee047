// Document text extraction for RAG ingestion: file type detection, the normalised Markdown-ish
// text each format yields, SF_ERR_DOCUMENT_UNREADABLE for what cannot be read, and the generated
// test corpus (every file extracts, holds its answer, and its question retrieves it).
import { beforeAll, describe, expect, it } from "vitest";
import { PDFDocument, StandardFonts } from "pdf-lib";
import {
  SF_ERR_DOCUMENT_UNREADABLE,
  SF_ERR_EXTRACT_OPTIONS_INVALID,
  chunkDocument,
  detectFileType,
  extractText,
  parseExtractOptions,
} from "../../agent-worker/index.ts";
import type { DocumentFileType } from "../../agent-worker/index.ts";
import { generateCorpus, IRRELEVANT_QUESTION } from "../fixtures/documents/corpus.ts";
import type { CorpusFile } from "../fixtures/documents/corpus.ts";
import { bagOfWordsEmbedding, cosine, tokenize } from "../fixtures/providers/bag_of_words.ts";
import { rejection } from "./provider_test_kit.ts";

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);
const PDF_HEAD = utf8("%PDF-1.7\n%\u00e2\u00e3\n1 0 obj");
const PNG_HEAD = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]);
const ZIP_HEAD = new Uint8Array([0x50, 0x4b, 0x03, 0x04, 20, 0, 6, 0]);

async function unreadable(data: Uint8Array, fileType: DocumentFileType, options = {}): Promise<string> {
  const err = await rejection(extractText(data, fileType, options), SF_ERR_DOCUMENT_UNREADABLE);
  expect(err.retryable).toBe(false);
  expect(err.details).toEqual({ file_type: fileType });
  expect(err.message.length).toBeGreaterThan(10);
  return err.message;
}

/** A PDF with one page per entry of `pages`; each page gets a 20 pt heading and 11 pt lines. */
async function makePdf(pages: { heading?: string; lines: string[] }[], title?: string): Promise<Uint8Array> {
  const doc = await PDFDocument.create();
  if (title !== undefined) doc.setTitle(title);
  const font = await doc.embedFont(StandardFonts.Helvetica);
  for (const { heading, lines } of pages) {
    const page = doc.addPage([612, 792]);
    let y = 720;
    if (heading !== undefined) {
      page.drawText(heading, { x: 72, y, size: 20, font });
      y -= 34;
    }
    for (const line of lines) {
      if (line !== "") page.drawText(line, { x: 72, y, size: 11, font });
      y -= 14;
    }
  }
  return doc.save();
}

describe("detectFileType", () => {
  it("extract - the extension names the type, whatever its case", () => {
    const text = utf8("hello");
    expect(detectFileType("notes.txt", null, text)).toBe("text");
    expect(detectFileType("NOTES.TEXT", undefined, text)).toBe("text");
    expect(detectFileType("docs/README.md", null, text)).toBe("markdown");
    expect(detectFileType("guide.markdown", "application/octet-stream", text)).toBe("markdown");
    expect(detectFileType("index.HTML", null, text)).toBe("html");
    expect(detectFileType("old.htm", null, text)).toBe("html");
    expect(detectFileType("report.pdf", null, PDF_HEAD)).toBe("pdf");
  });

  it("extract - the content type names the type when the name does not, parameters ignored", () => {
    const text = utf8("hello");
    expect(detectFileType(null, "text/plain", text)).toBe("text");
    expect(detectFileType(null, "text/html; charset=ISO-8859-1", text)).toBe("html");
    expect(detectFileType("upload", "Text/Markdown;charset=utf-8", text)).toBe("markdown");
    expect(detectFileType(undefined, "application/pdf", PDF_HEAD)).toBe("pdf");
    expect(detectFileType("server.log", "text/plain", text)).toBe("text");
    expect(detectFileType(null, null, utf8("  <!DOCTYPE html><html><body>x</body></html>"))).toBe("html");
  });

  it("extract - bytes that start like a PDF are a PDF, whatever the name or type says", () => {
    expect(detectFileType("report.txt", "text/plain", PDF_HEAD)).toBe("pdf");
    expect(detectFileType("blob", "application/octet-stream", PDF_HEAD)).toBe("pdf");
    expect(detectFileType(null, null, PDF_HEAD)).toBe("pdf");
  });

  it("extract - unsupported files are null: Word, images, binary bytes behind a text name", () => {
    expect(detectFileType("contract.docx", null, ZIP_HEAD)).toBeNull();
    expect(detectFileType("contract.docx", "text/plain", ZIP_HEAD)).toBeNull();
    const docx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
    expect(detectFileType("contract.docx", docx, ZIP_HEAD)).toBeNull();
    expect(detectFileType(null, docx, ZIP_HEAD)).toBeNull();
    expect(detectFileType("photo.png", "image/png", PNG_HEAD)).toBeNull();
    expect(detectFileType("photo.txt", "text/plain", PNG_HEAD)).toBeNull();
    expect(detectFileType(null, "text/plain", new Uint8Array([0x68, 0, 0x69, 0]))).toBeNull();
    expect(detectFileType(null, "application/octet-stream", utf8("hello"))).toBeNull();
    expect(detectFileType(null, null, new Uint8Array())).toBeNull();
    expect(detectFileType("archive.tar.gz", null, new Uint8Array([0x1f, 0x8b, 8]))).toBeNull();
  });
});

describe("extractText: text and Markdown", () => {
  it("extract - plain text: BOM stripped, CRLF normalised, blank runs squeezed, no title", async () => {
    const data = new Uint8Array([
      0xef,
      0xbb,
      0xbf,
      ...utf8("Line one\r\nLine two   \r\n\r\n\r\n\r\nCafé au lait\r\n"),
    ]);
    const doc = await extractText(data, "text");
    expect(doc).toEqual({ text: "Line one\nLine two\n\nCafé au lait", title: null, pages: null });
  });

  it("extract - invalid UTF-8 text is SF_ERR_DOCUMENT_UNREADABLE", async () => {
    await unreadable(new Uint8Array([0x48, 0x69, 0xff, 0xfe, 0x21]), "text");
    await unreadable(new Uint8Array([0x23, 0x20, 0xc3]), "markdown"); // truncated sequence
  });

  it("extract - empty or whitespace-only text is SF_ERR_DOCUMENT_UNREADABLE", async () => {
    await unreadable(new Uint8Array(), "text");
    await unreadable(utf8(" \n\t\r\n  "), "text");
    await unreadable(utf8("---\ntitle: only front matter\n---\n"), "markdown");
  });

  it("extract - Markdown: front matter dropped, headings kept, title from the first # heading", async () => {
    const source = [
      "---",
      "title: Front matter title",
      "tags: [a, b]",
      "---",
      "",
      "Intro line before any heading.",
      "",
      "```sh",
      "# a shell comment, not a heading",
      "```",
      "",
      "# Billing Guide",
      "",
      "## Refunds",
      "",
      "Refunds take 5 days.",
      "",
      "Setext Section",
      "--------------",
      "",
      "- item one",
      "- item two",
    ].join("\r\n");
    const doc = await extractText(utf8(source), "markdown");
    expect(doc.title).toBe("Billing Guide");
    expect(doc.pages).toBeNull();
    expect(doc.text).not.toContain("Front matter title");
    expect(doc.text).not.toContain("\r");
    expect(doc.text.startsWith("Intro line before any heading.")).toBe(true);
    expect(doc.text).toContain("# Billing Guide\n\n## Refunds\n\nRefunds take 5 days.");
    expect(doc.text).toContain("## Setext Section\n\n- item one\n- item two");
    expect(doc.text).toContain("```sh\n# a shell comment, not a heading\n```");
  });

  it("extract - Markdown without a # heading has no title", async () => {
    const doc = await extractText(utf8("## Only a subheading\n\nText."), "markdown");
    expect(doc.title).toBeNull();
  });
});

describe("extractText: HTML", () => {
  const page = `<!DOCTYPE html>
<html><head>
  <title>  Refund &amp; Billing   Help </title>
  <style>.x { color: red } body::before { content: "styletext" }</style>
  <script>var leaked = "scripttext"; if (a < b) { document.write("<p>scriptpara</p>") }</script>
</head><body>
  <nav><a href="/">navhome</a> <a href="/x">navlink</a></nav>
  <header><h1>Billing   &amp; Refunds</h1></header>
  <main>
    <p>Prices are in &euro; and &lt;b&gt; is a tag&#39;s name;   spaces
       collapse&nbsp;here. Caf&eacute; &#x263A;</p>
    <h2>Refund <em>policy</em></h2>
    <p>First line<br>second line</p>
    <ul><li>Cards</li><li>Bank <b>transfer</b><ul><li>SEPA only</li></ul></li></ul>
    <h6>Tiny heading</h6>
    <table><tr><th>Plan</th><th>Price</th></tr><tr><td>Pro</td><td>9</td></tr></table>
    <pre>line 1
    indented line 2</pre>
    <template><p>templatetext</p></template>
    <noscript>noscripttext</noscript>
    <div>Outer<div>inner block</div></div>
  </main>
  <!-- commenttext -->
</body></html>`;

  it("extract - HTML: h1–h6 become #–######, lists '- ', tables 'a | b', title from <title>", async () => {
    const doc = await extractText(utf8(page), "html");
    expect(doc.title).toBe("Refund & Billing Help");
    expect(doc.pages).toBeNull();
    const blocks = doc.text.split("\n\n");
    expect(blocks[0]).toBe("# Billing & Refunds");
    expect(blocks).toContain("## Refund policy");
    expect(blocks).toContain("###### Tiny heading");
    expect(blocks).toContain("First line\nsecond line");
    expect(blocks).toContain("- Cards\n- Bank transfer\n  - SEPA only");
    expect(blocks).toContain("Plan | Price\nPro | 9");
    expect(blocks).toContain("```\nline 1\n    indented line 2\n```");
    expect(blocks).toContain("Outer");
    expect(blocks).toContain("inner block");
  });

  it("extract - HTML: entities decoded, whitespace collapsed, no tags, hidden content dropped", async () => {
    const doc = await extractText(utf8(page), "html");
    expect(doc.text).toContain("Prices are in € and <b> is a tag's name; spaces collapse here. Café ☺");
    for (const hidden of [
      "styletext",
      "scripttext",
      "scriptpara",
      "navhome",
      "navlink",
      "templatetext",
      "noscripttext",
      "commenttext",
    ]) {
      expect(doc.text).not.toContain(hidden);
    }
    expect(doc.text).not.toMatch(/<\/?(p|div|span|li|ul|h\d|script|main|html|body)\b/);
    // Runs of spaces survive only as list indentation and inside <pre>.
    const outsidePre = doc.text.replace(/```[\s\S]*?```/g, "");
    for (const line of outsidePre.split("\n")) expect(line.trimStart()).not.toMatch(/\s{2,}/);
    expect(doc.text).not.toMatch(/\n{3,}/);
  });

  it("extract - HTML: the first h1 is the title when there is no <title>", async () => {
    const doc = await extractText(utf8("<h2>Sub</h2><h1>The <i>Real</i> Title</h1><p>Body.</p>"), "html");
    expect(doc.title).toBe("The Real Title");
    expect(doc.text).toBe("## Sub\n\n# The Real Title\n\nBody.");
    const none = await extractText(utf8("<p>No headings here.</p>"), "html");
    expect(none.title).toBeNull();
  });

  it("extract - HTML that is not UTF-8 is decoded by its declared charset", async () => {
    const head = utf8('<html><head><meta charset="windows-1252"><title>Menu</title></head><body><p>Caf');
    const data = new Uint8Array([...head, 0xe9, 0x20, 0x80, ...utf8("5</p></body></html>")]);
    const doc = await extractText(data, "html");
    expect(doc.text).toBe("Café €5");
  });

  it("extract - HTML with no visible text is SF_ERR_DOCUMENT_UNREADABLE", async () => {
    await unreadable(
      utf8("<html><head><title>T</title><script>x()</script></head><body> </body></html>"),
      "html",
    );
  });
});

describe("extractText: PDF", () => {
  let threePages: Uint8Array;
  beforeAll(async () => {
    threePages = await makePdf(
      [
        { heading: "Opening Hours", lines: ["The shop opens at nine on weekdays.", "It closes at six."] },
        { lines: ["Page two talks about parking behind the station.", "", "A second paragraph here."] },
        { lines: ["Page three ends the document."] },
      ],
      "Shop Handbook",
    );
  });

  it("extract - a multi-page PDF: every page's text in order, pages joined by blank lines", async () => {
    const doc = await extractText(threePages, "pdf");
    expect(doc.pages).toBe(3);
    expect(doc.title).toBe("Shop Handbook");
    expect(doc.text).toBe(
      [
        "# Opening Hours",
        "The shop opens at nine on weekdays. It closes at six.",
        "Page two talks about parking behind the station.",
        "A second paragraph here.",
        "Page three ends the document.",
      ].join("\n\n"),
    );
    // The caller's buffer is left as it was (PDF.js gets a copy).
    expect(threePages.byteLength).toBeGreaterThan(100);
    expect(detectFileType("x", null, threePages)).toBe("pdf");
  });

  it("extract - a PDF without a Title is titled by its first large heading", async () => {
    const body = ["Body text that is longer than the heading above it.", "And a second line of body text."];
    const doc = await extractText(await makePdf([{ heading: "Big Heading", lines: body }]), "pdf");
    expect(doc.title).toBe("Big Heading");
    const plain = await extractText(await makePdf([{ lines: ["Body text only."] }]), "pdf");
    expect(plain.title).toBeNull();
  });

  it("extract - a corrupt or truncated PDF is SF_ERR_DOCUMENT_UNREADABLE", async () => {
    await unreadable(utf8("%PDF-1.7\nthis is not really a pdf\n%%EOF"), "pdf");
    await unreadable(utf8("hello, I am text"), "pdf");
    await unreadable(new Uint8Array(), "pdf");
  });

  it("extract - a PDF over maxPages is refused before its pages are read", async () => {
    await unreadable(threePages, "pdf", { maxPages: 2 });
    const doc = await extractText(threePages, "pdf", { maxPages: 3 });
    expect(doc.pages).toBe(3);
  });

  it("extract - maxPages defaults to 2000 and must be a positive integer", async () => {
    expect(parseExtractOptions()).toEqual({ maxPages: 2000 });
    expect(Object.isFrozen(parseExtractOptions({ maxPages: 5 }))).toBe(true);
    for (const maxPages of [0, -1, 2.5, Number.NaN]) {
      await rejection(extractText(threePages, "pdf", { maxPages }), SF_ERR_EXTRACT_OPTIONS_INVALID);
    }
  });

  it("extract - a PDF with no text (blank or scanned pages) is SF_ERR_DOCUMENT_UNREADABLE", async () => {
    await unreadable(await makePdf([{ lines: [] }, { lines: [] }]), "pdf");
  });
});

describe("test corpus", () => {
  let corpus: CorpusFile[];
  const texts = new Map<string, string>();
  beforeAll(async () => {
    corpus = await generateCorpus();
    for (const file of corpus) texts.set(file.fileName, (await extractText(file.data, file.fileType)).text);
  });

  it("corpus - 30 files: 12 Markdown, 10 HTML, 8 PDF, distinct names and topics, 300–1500 words", () => {
    expect(corpus).toHaveLength(30);
    const count = (type: string): number => corpus.filter((f) => f.fileType === type).length;
    expect([count("markdown"), count("html"), count("pdf")]).toEqual([12, 10, 8]);
    expect(new Set(corpus.map((f) => f.fileName)).size).toBe(30);
    expect(new Set(corpus.map((f) => f.topic)).size).toBe(30);
    for (const file of corpus) {
      const words = (texts.get(file.fileName) ?? "").split(/\s+/).length;
      expect(words, file.fileName).toBeGreaterThanOrEqual(300);
      expect(words, file.fileName).toBeLessThanOrEqual(1600);
    }
  });

  it("corpus - every file is detected as its type, extracts with its title, and holds its answer", async () => {
    for (const file of corpus) {
      expect(
        detectFileType(file.fileName, file.contentType, file.data.subarray(0, 1024)),
        file.fileName,
      ).toBe(file.fileType);
      const doc = await extractText(file.data, file.fileType);
      expect(doc.title, file.fileName).toBe(file.title);
      expect(doc.text, file.fileName).toContain(file.answer);
      expect(doc.text, file.fileName).toMatch(/^# /m);
      expect(doc.text, file.fileName).toMatch(/^## /m);
      expect(doc.text).not.toContain("zzscriptonly");
      expect(doc.text).not.toContain("zznoscriptonly");
      expect(
        chunkDocument(doc.text).some((chunk) => chunk.content.includes(file.answer)),
        file.fileName,
      ).toBe(true);
    }
    const pdfPages = await Promise.all(
      corpus
        .filter((f) => f.fileType === "pdf")
        .map(async (f) => (await extractText(f.data, "pdf")).pages ?? 0),
    );
    expect(pdfPages.filter((pages) => pages > 1).length).toBeGreaterThanOrEqual(2);
  });

  it("corpus - generation is deterministic, byte for byte", async () => {
    const again = await generateCorpus();
    expect(again.map((f) => Buffer.from(f.data).toString("base64"))).toEqual(
      corpus.map((f) => Buffer.from(f.data).toString("base64")),
    );
  });

  it("corpus - each question's rare words are in its document only; the irrelevant question matches none", () => {
    const vocab = new Map(corpus.map((f) => [f.fileName, new Set(tokenize(texts.get(f.fileName) ?? ""))]));
    for (const file of corpus) {
      const words = new Set(tokenize(file.question));
      const own = [...words].filter((w) => vocab.get(file.fileName)?.has(w));
      const unique = own.filter((w) => corpus.every((o) => o === file || !vocab.get(o.fileName)?.has(w)));
      expect(own.length, file.question).toBeGreaterThanOrEqual(3);
      expect(unique.length, file.question).toBeGreaterThanOrEqual(2);
      for (const other of corpus) {
        if (other === file) continue;
        const shared = [...words].filter((w) => vocab.get(other.fileName)?.has(w));
        expect(shared.length, `${file.question} vs ${other.fileName}`).toBeLessThanOrEqual(2);
      }
    }
    const irrelevant = tokenize(IRRELEVANT_QUESTION);
    expect(irrelevant.length).toBeGreaterThanOrEqual(4);
    for (const vocabulary of vocab.values())
      for (const word of irrelevant) expect(vocabulary.has(word)).toBe(false);
  });

  it("corpus - with bag-of-words embeddings each question's nearest chunk is its answer's", () => {
    const dimension = 1024;
    const chunks = corpus.flatMap((file) =>
      chunkDocument(texts.get(file.fileName) ?? "").map((chunk) => ({
        fileName: file.fileName,
        content: chunk.content,
        vector: bagOfWordsEmbedding(chunk.content, dimension),
      })),
    );
    expect(chunks.length).toBeGreaterThan(corpus.length * 2);
    for (const file of corpus) {
      const query = bagOfWordsEmbedding(file.question, dimension);
      const best = chunks
        .map((chunk) => ({ chunk, score: cosine(query, chunk.vector) }))
        .sort((a, b) => b.score - a.score)[0];
      expect(best?.chunk.fileName, file.question).toBe(file.fileName);
      expect(best?.chunk.content, file.question).toContain(file.answer);
    }
    const irrelevant = bagOfWordsEmbedding(IRRELEVANT_QUESTION, dimension);
    const top = Math.max(...chunks.map((chunk) => cosine(irrelevant, chunk.vector)));
    expect(top).toBeLessThan(0.2);
  });
});
