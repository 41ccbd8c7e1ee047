// The chunker: sections at headings with the heading path as a prefix, the token budget (prefix
// included, no slack: estimateTokens(content) <= maxTokens for every chunk), paragraph then
// sentence then word boundaries, whole-sentence overlap inside a section only, and determinism.
import { describe, expect, it } from "vitest";
import {
  SF_ERR_CHUNK_OPTIONS_INVALID,
  chunkDocument,
  estimateTokens,
  parseChunkOptions,
  splitSentences,
} from "../../agent-worker/index.ts";
import type { ChunkOptions, TextChunk } from "../../agent-worker/index.ts";
import { SfError } from "../../bus/index.ts";

/** Sentence `i` of a topic: distinct, about 14 words, ends with a period. */
const sentence = (topic: string, i: number): string =>
  `The ${topic} note number ${i} explains one more detail about the ${topic} process in plain words.`;

const sentences = (topic: string, n: number): string[] =>
  Array.from({ length: n }, (_, i) => sentence(topic, i));

/** Paragraphs of `perParagraph` sentences each. */
const paragraphs = (topic: string, n: number, perParagraph: number): string[] => {
  const all = sentences(topic, n * perParagraph);
  return Array.from({ length: n }, (_, p) => all.slice(p * perParagraph, (p + 1) * perParagraph).join(" "));
};

/** The chunk's text after its heading path line. */
function body(chunk: TextChunk): string {
  if (chunk.headingPath.length === 0) return chunk.content;
  const prefix = `${chunk.headingPath.join(" > ")}\n\n`;
  expect(chunk.content.startsWith(prefix)).toBe(true);
  return chunk.content.slice(prefix.length);
}

function expectInvalid(options: ChunkOptions): void {
  let caught: unknown;
  try {
    parseChunkOptions(options);
  } catch (err) {
    caught = err;
  }
  expect(caught, JSON.stringify(options)).toBeInstanceOf(SfError);
  expect((caught as SfError).code).toBe(SF_ERR_CHUNK_OPTIONS_INVALID);
  expect(() => chunkDocument("Some text.", options)).toThrow(SfError);
}

describe("estimateTokens", () => {
  it("chunker - tokens = max(ceil(chars / 4), ceil(words × 4 / 3)), CJK characters count as words", () => {
    expect(estimateTokens("")).toBe(0);
    expect(estimateTokens("abcd")).toBe(2); // 1 by chars, 2 by words
    expect(estimateTokens("a b c")).toBe(4); // 2 by chars, 4 by words
    expect(estimateTokens("x".repeat(400))).toBe(100); // one long word: chars win
    expect(estimateTokens("hello world, this is a sentence.")).toBe(8); // 32 chars → 8; 6 words → 8
    expect(estimateTokens("東京都に住む")).toBe(10); // 1 run + 6 CJK → ceil(28 / 3)
    expect(estimateTokens("same text")).toBe(estimateTokens("same text"));
  });
});

describe("splitSentences", () => {
  it("chunker - sentences end at . ! ? before whitespace, not after abbreviations, initials or decimals", () => {
    const text =
      "Dr. Ilse Brandauer measured 3.5 litres, e.g. in the cellar. Was it enough? Yes! " +
      'Mr. J. Smith paid approx. five euros vs. the usual six (see Fig. 2). She said "Done." Then left.';
    expect(splitSentences(text)).toEqual([
      "Dr. Ilse Brandauer measured 3.5 litres, e.g. in the cellar.",
      "Was it enough?",
      "Yes!",
      "Mr. J. Smith paid approx. five euros vs. the usual six (see Fig. 2).",
      'She said "Done."',
      "Then left.",
    ]);
    // An unknown abbreviation is caught by the lowercase word after it.
    expect(splitSentences("The temp. rose slowly. Then it fell.")).toEqual([
      "The temp. rose slowly.",
      "Then it fell.",
    ]);
    expect(splitSentences("  no terminal punctuation\nat all  ")).toEqual(["no terminal punctuation at all"]);
    expect(splitSentences(" \n ")).toEqual([]);
  });
});

describe("chunkDocument", () => {
  it("chunker - empty or blank input gives no chunks", () => {
    expect(chunkDocument("")).toEqual([]);
    expect(chunkDocument("  \n\n\t\n")).toEqual([]);
  });

  it("chunker - a heading starts a new chunk; content starts with the heading path line", () => {
    const text = [
      "Preamble before any heading.",
      "# Billing",
      "Billing intro.",
      "## Refunds",
      "Refunds take five days.",
      "### Card refunds",
      "Cards are refunded to the card.",
      "## Invoices",
      "Invoices are monthly.",
      "# Support",
      "Write to us.",
    ].join("\n\n");
    const chunks = chunkDocument(text);
    expect(chunks.map((c) => c.content)).toEqual([
      "Preamble before any heading.",
      "Billing\n\nBilling intro.",
      "Billing > Refunds\n\nRefunds take five days.",
      "Billing > Refunds > Card refunds\n\nCards are refunded to the card.",
      "Billing > Invoices\n\nInvoices are monthly.",
      "Support\n\nWrite to us.",
    ]);
    expect(chunks.map((c) => c.headingPath)).toEqual([
      [],
      ["Billing"],
      ["Billing", "Refunds"],
      ["Billing", "Refunds", "Card refunds"],
      ["Billing", "Invoices"],
      ["Support"],
    ]);
    expect(chunks.map((c) => c.index)).toEqual([0, 1, 2, 3, 4, 5]);
    for (const chunk of chunks) expect(chunk.tokens).toBe(estimateTokens(chunk.content));
  });

  it("chunker - a heading with no text is kept in its children's path, or alone when it has none", () => {
    const chunks = chunkDocument(
      "# Guide\n\n## Setup\n\nRun the installer.\n\n## FAQ\n\n# Appendix ##\n\nEnd.",
    );
    expect(chunks.map((c) => c.content)).toEqual([
      "Guide > Setup\n\nRun the installer.",
      "Guide > FAQ",
      "Appendix\n\nEnd.",
    ]);
  });

  it("chunker - lines inside a code fence are never headings", () => {
    const text = "# Script\n\n```sh\n# install\nnpm ci\n\n# test\nnpm test\n```\n\nDone.";
    const chunks = chunkDocument(text);
    expect(chunks).toHaveLength(1);
    expect(chunks[0]?.headingPath).toEqual(["Script"]);
    expect(chunks[0]?.content).toBe(`Script\n\n${text.slice("# Script\n\n".length)}`);
  });

  it("chunker - every chunk's estimateTokens(content), prefix included, is at most maxTokens", () => {
    const text = [
      "# Operations Handbook",
      ...paragraphs("alpha", 6, 5),
      "## Maintenance Windows And Other Rather Long Heading Words",
      ...paragraphs("beta", 4, 9),
      "### Deep",
      sentences("gamma", 40).join(" "), // one paragraph far over the limit
      "## List",
      Array.from({ length: 60 }, (_, i) => `- item ${i} of the list`).join("\n"),
    ].join("\n\n");
    for (const maxTokens of [16, 40, 80, 350]) {
      const overlapTokens = Math.floor(maxTokens / 4);
      const chunks = chunkDocument(text, { maxTokens, overlapTokens });
      expect(chunks.length).toBeGreaterThan(maxTokens === 350 ? 4 : 10);
      for (const chunk of chunks) {
        expect(chunk.tokens, chunk.content).toBeLessThanOrEqual(maxTokens);
        expect(chunk.tokens).toBe(estimateTokens(chunk.content));
        // (With tiny budgets the heading path line is shortened, so split at the blank line.)
        const split = chunk.content.indexOf("\n\n");
        expect(split, chunk.content).toBeGreaterThan(0);
        expect(chunk.content.slice(split + 2).trim(), "no empty chunks").not.toBe("");
      }
      expect(chunks.map((c) => c.index)).toEqual(chunks.map((_, i) => i));
    }
  });

  it("chunker - a long section splits at paragraph boundaries first", () => {
    const paras = paragraphs("delta", 8, 3); // ~45 words each
    const chunks = chunkDocument(`# Delta\n\n${paras.join("\n\n")}`, { maxTokens: 160, overlapTokens: 0 });
    expect(chunks.length).toBeGreaterThan(2);
    // Each chunk is whole paragraphs, in order, and together they are the section.
    const seen = chunks.flatMap((c) => body(c).split("\n\n"));
    expect(seen).toEqual(paras);
  });

  it("chunker - no chunk starts or ends mid-sentence; every sentence is in some chunk whole", () => {
    const all = sentences("epsilon", 30);
    const text = `# Epsilon\n\n${all.slice(0, 12).join(" ")}\n\n${all.slice(12).join(" ")}`;
    const chunks = chunkDocument(text, { maxTokens: 90, overlapTokens: 30 });
    expect(chunks.length).toBeGreaterThan(4);
    for (const chunk of chunks) {
      const parts = splitSentences(body(chunk));
      for (const part of parts) expect(all, part).toContain(part);
    }
    for (const s of all)
      expect(
        chunks.some((c) => c.content.includes(s)),
        s,
      ).toBe(true);
  });

  it("chunker - abbreviations and decimals are not split across chunks", () => {
    const tricky = Array.from(
      { length: 12 },
      (_, i) =>
        `Dr. Rowan Vale measured ${i}.5 litres in room ${i}, e.g. near the approx. centre of St. Ives.`,
    );
    const chunks = chunkDocument(tricky.join(" "), { maxTokens: 60, overlapTokens: 20 });
    expect(chunks.length).toBeGreaterThan(3);
    for (const chunk of chunks) {
      for (const part of splitSentences(chunk.content)) expect(tricky).toContain(part);
      expect(chunk.content).not.toMatch(/(Dr|e\.g|approx|St)\.$/);
      expect(chunk.content).toMatch(/^Dr\. Rowan Vale/);
    }
  });

  it("chunker - consecutive chunks of a section overlap by whole trailing sentences within overlapTokens", () => {
    const all = sentences("zeta", 24);
    const chunks = chunkDocument(`# Zeta\n\n${all.join(" ")}\n\n# Eta\n\n${sentences("eta", 24).join(" ")}`, {
      maxTokens: 100,
      overlapTokens: 30,
    });
    let pairsInSection = 0;
    for (let i = 1; i < chunks.length; i += 1) {
      const previous = chunks[i - 1] as TextChunk;
      const current = chunks[i] as TextChunk;
      const previousSentences = splitSentences(body(previous));
      const currentSentences = splitSentences(body(current));
      const last = previousSentences[previousSentences.length - 1] ?? "";
      if (previous.headingPath.join() === current.headingPath.join()) {
        pairsInSection += 1;
        // The repeated part is the tail of the previous chunk, whole sentences, within budget.
        const repeated = currentSentences.filter((s) => previousSentences.includes(s));
        expect(repeated.length, current.content).toBeGreaterThan(0);
        expect(currentSentences.slice(0, repeated.length)).toEqual(repeated);
        expect(previousSentences.slice(-repeated.length)).toEqual(repeated);
        expect(estimateTokens(repeated.join(" "))).toBeLessThanOrEqual(30);
        expect(currentSentences.length).toBeGreaterThan(repeated.length);
      } else {
        expect(currentSentences).not.toContain(last);
        expect(current.content).not.toContain("zeta");
      }
    }
    expect(pairsInSection).toBeGreaterThan(4);
    const noOverlap = chunkDocument(all.join(" "), { maxTokens: 100, overlapTokens: 0 });
    expect(noOverlap.flatMap((c) => splitSentences(c.content))).toEqual(all);
  });

  it("chunker - overlap gives way when the next paragraph needs the room", () => {
    // Paragraphs that nearly fill a chunk, each ending in a short sentence that could be repeated.
    const paras = Array.from(
      { length: 5 },
      (_, i) => `${sentences(`kappa${i}`, 4).join(" ")} Short end ${i}.`,
    );
    const maxTokens = Math.max(...paras.map((p) => estimateTokens(`Kappa\n\n${p}`))) + 1;
    const chunks = chunkDocument(`# Kappa\n\n${paras.join("\n\n")}`, { maxTokens, overlapTokens: 20 });
    expect(chunks.map(body)).toEqual(paras);
    for (const chunk of chunks) expect(chunk.tokens).toBeLessThanOrEqual(maxTokens);
  });

  it("chunker - a sentence over the limit is cut at words, a word over the limit at characters", () => {
    const words = Array.from({ length: 300 }, (_, i) => `word${i}`);
    const long = `${words.join(" ")}.`;
    const chunks = chunkDocument(`Short opener. ${long} Short closer.`, { maxTokens: 50, overlapTokens: 10 });
    for (const chunk of chunks) expect(chunk.tokens).toBeLessThanOrEqual(50);
    // The runs of the long sentence, in order, rebuild it; word runs are never repeated.
    const runs = chunks.map((c) => c.content).filter((c) => c.includes("word"));
    expect(runs.join(" ").replace("Short opener. ", "").replace(" Short closer.", "")).toBe(long);
    for (const run of runs)
      expect(run.split(" ").every((w) => /^(word\d+\.?|Short|opener\.|closer\.)$/.test(w))).toBe(true);

    const blob = "x".repeat(1000);
    const blobChunks = chunkDocument(blob, { maxTokens: 20, overlapTokens: 0 });
    expect(blobChunks.map((c) => c.content).join("")).toBe(blob);
    for (const chunk of blobChunks) expect(chunk.tokens).toBeLessThanOrEqual(20);
  });

  it("chunker - a long list is cut between items", () => {
    const items = Array.from({ length: 80 }, (_, i) => `- step ${i}: tighten bolt ${i}`);
    const chunks = chunkDocument(`# Steps\n\n${items.join("\n")}`, { maxTokens: 60, overlapTokens: 0 });
    expect(chunks.length).toBeGreaterThan(3);
    expect(chunks.flatMap((c) => body(c).split("\n"))).toEqual(items);
  });

  it("chunker - an over-long heading path is shortened in the content but kept in headingPath", () => {
    const heading = Array.from({ length: 60 }, (_, i) => `heading${i}`).join(" ");
    const chunks = chunkDocument(`# ${heading}\n\nBody sentence.`, { maxTokens: 40, overlapTokens: 0 });
    expect(chunks).toHaveLength(1);
    expect(chunks[0]?.headingPath).toEqual([heading]);
    expect(chunks[0]?.tokens).toBeLessThanOrEqual(40);
    expect(chunks[0]?.content).toMatch(/^heading0 .*…\n\nBody sentence\.$/);
  });

  it("chunker - the same text gives the same chunks", () => {
    const text = `# A\n\n${paragraphs("theta", 10, 4).join("\n\n")}\n\n## B\n\n${sentences("iota", 30).join(" ")}`;
    const first = chunkDocument(text, { maxTokens: 120, overlapTokens: 40 });
    const second = chunkDocument(`${text}`, { maxTokens: 120, overlapTokens: 40 });
    expect(second).toEqual(first);
    expect(first.length).toBeGreaterThan(5);
    // And the default options are the documented ones.
    expect(chunkDocument(text)).toEqual(chunkDocument(text, { maxTokens: 350, overlapTokens: 60 }));
  });
});

describe("parseChunkOptions", () => {
  it("chunker - defaults are 350 / 60 and the resolved options are frozen", () => {
    const options = parseChunkOptions();
    expect(options).toEqual({ maxTokens: 350, overlapTokens: 60 });
    expect(Object.isFrozen(options)).toBe(true);
    expect(parseChunkOptions({ maxTokens: 100, overlapTokens: 0 })).toEqual({
      maxTokens: 100,
      overlapTokens: 0,
    });
    expect(parseChunkOptions({ maxTokens: 100, overlapTokens: 49 })).toEqual({
      maxTokens: 100,
      overlapTokens: 49,
    });
  });

  it("chunker - invalid options are SF_ERR_CHUNK_OPTIONS_INVALID", () => {
    expectInvalid({ maxTokens: 0 });
    expectInvalid({ maxTokens: -5 });
    expectInvalid({ maxTokens: 120.5 });
    expectInvalid({ maxTokens: Number.NaN });
    expectInvalid({ maxTokens: 15 });
    expectInvalid({ overlapTokens: -1 });
    expectInvalid({ overlapTokens: 2.5 });
    expectInvalid({ maxTokens: 100, overlapTokens: 50 });
    expectInvalid({ overlapTokens: 175 }); // default maxTokens 350
  });
});
