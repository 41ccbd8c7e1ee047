/**
 * Turning retrieval results into the prompt: the best chunks and the user's relevant past turns,
 * numbered, within a token budget, as one system message; and the citations the reply records
 * (the v1 contract's `citations`: document id, title, chunk, similarity).
 */
import type { DocumentMatch, TranscriptMatch } from "../../actors/index.ts";
import { estimateTokens } from "./chunker.ts";

export interface Citation {
  document_id: string;
  title: string;
  chunk_index: number;
  /** The chunk's text (first 500 characters). */
  chunk: string;
  similarity: number;
  source_url: string | null;
}

export interface RagContext {
  /** The system message to add, or null when nothing was retrieved. */
  message: string | null;
  citations: Citation[];
  /** Distinct documents the context used, in order of first use. */
  documentIds: string[];
  /** Past turns included. */
  transcripts: number;
  tokens: number;
}

const CITATION_CHARS = 500;

/**
 * Documents first (most similar first), then past turns, each taken whole while it fits
 * `budgetTokens`; past turns may use at most a quarter of the budget when documents are there.
 */
export function buildRagContext(
  documents: readonly DocumentMatch[],
  transcripts: readonly TranscriptMatch[],
  budgetTokens: number,
): RagContext {
  const docs = [...documents].sort((a, b) => b.similarity - a.similarity);
  const turns = [...transcripts].sort((a, b) => b.similarity - a.similarity);
  const transcriptBudget = docs.length > 0 ? Math.floor(budgetTokens / 4) : budgetTokens;
  const documentBudget =
    turns.length > 0 ? budgetTokens - Math.min(transcriptBudget, budgetTokens) : budgetTokens;

  const header =
    "Answer from the knowledge-base excerpts below when they are relevant, and cite them by their number, like [1]. " +
    "If they do not hold the answer, say so rather than guessing.";
  let tokens = estimateTokens(header);
  const lines: string[] = [];
  const citations: Citation[] = [];
  const documentIds: string[] = [];
  for (const match of docs) {
    const title = match.documentTitle ?? match.title ?? "Untitled document";
    const line = `[${citations.length + 1}] ${title}\n${match.content.trim()}`;
    const cost = estimateTokens(line);
    if (tokens + cost > documentBudget) break;
    tokens += cost;
    lines.push(line);
    citations.push({
      document_id: match.documentId,
      title,
      chunk_index: match.chunkIndex,
      chunk: match.content.slice(0, CITATION_CHARS),
      similarity: Math.round(match.similarity * 10_000) / 10_000,
      source_url: match.sourceUrl,
    });
    if (!documentIds.includes(match.documentId)) documentIds.push(match.documentId);
  }

  const turnLines: string[] = [];
  let turnTokens = 0;
  for (const turn of turns) {
    const line = `- The user said: ${(turn.userMessage ?? "").trim()}\n  You answered: ${(turn.agentResponse ?? "").trim()}`;
    const cost = estimateTokens(line);
    if (turnTokens + cost > transcriptBudget || tokens + turnTokens + cost > budgetTokens) break;
    turnTokens += cost;
    turnLines.push(line);
  }

  if (lines.length === 0 && turnLines.length === 0) {
    return { message: null, citations: [], documentIds: [], transcripts: 0, tokens: 0 };
  }
  const parts: string[] = [];
  if (lines.length > 0) parts.push(header, "", "Knowledge-base excerpts:", ...lines.flatMap((l) => [l, ""]));
  if (turnLines.length > 0) {
    parts.push("Relevant earlier exchanges with this user:", ...turnLines);
  }
  return {
    message: parts.join("\n").trim(),
    citations,
    documentIds,
    transcripts: turnLines.length,
    tokens: tokens + turnTokens,
  };
}
