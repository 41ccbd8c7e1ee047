/**
 * A YAML reader for the deployment tests, enough for what `helm template` renders and for our
 * rule and config files: block mappings and sequences (also sequences at their key's indent),
 * plain, quoted and block (`|`, `>`) scalars, one-line flow collections, comments and `---`
 * documents. Anything else (anchors, tags, multi-line plain scalars) throws rather than being
 * misread. The repository has no YAML library and these tests should not add one.
 */
export type YamlValue = string | number | boolean | null | YamlValue[] | { [key: string]: YamlValue };

interface Line {
  readonly number: number;
  indent: number;
  text: string;
}

export class YamlError extends Error {
  constructor(message: string, line?: number) {
    super(line === undefined ? message : `line ${line}: ${message}`);
    this.name = "YamlError";
  }
}

/** Every non-empty document of a multi-document stream. */
export function parseYamlDocuments(source: string): YamlValue[] {
  const documents: string[][] = [[]];
  for (const raw of source.split(/\r?\n/)) {
    if (/^---(\s.*)?$/.test(raw)) documents.push([]);
    else if (/^\.\.\.\s*$/.test(raw)) documents.push([]);
    else documents.at(-1)?.push(raw);
  }
  const values: YamlValue[] = [];
  let offset = 0;
  for (const lines of documents) {
    const value = parseDocument(lines, offset);
    offset += lines.length + 1;
    if (value !== undefined) values.push(value);
  }
  return values;
}

/** One document; throws when the text holds more than one. */
export function parseYaml(source: string): YamlValue {
  const documents = parseYamlDocuments(source);
  if (documents.length !== 1) throw new YamlError(`expected one document, found ${documents.length}`);
  return documents[0] ?? null;
}

function parseDocument(rawLines: readonly string[], offset: number): YamlValue | undefined {
  const parser = new Parser(rawLines, offset);
  return parser.document();
}

class Parser {
  readonly #raw: readonly string[];
  readonly #offset: number;
  #pos = 0;
  // Lines whose indent/text a sequence entry rewrote (`- key: v` becomes `key: v`).
  readonly #rewritten = new Map<number, Line>();

  constructor(raw: readonly string[], offset: number) {
    this.#raw = raw;
    this.#offset = offset;
  }

  document(): YamlValue | undefined {
    const first = this.#peek();
    if (first === undefined) return undefined;
    const value = this.#node(first.indent);
    const rest = this.#peek();
    if (rest !== undefined) throw new YamlError(`unexpected content "${rest.text}"`, rest.number);
    return value;
  }

  /** The next significant line (not blank, not a comment), without consuming it. */
  #peek(): Line | undefined {
    while (this.#pos < this.#raw.length) {
      const rewritten = this.#rewritten.get(this.#pos);
      if (rewritten !== undefined) return rewritten;
      const raw = this.#raw[this.#pos] ?? "";
      const trimmed = raw.trim();
      if (trimmed === "" || trimmed.startsWith("#")) {
        this.#pos += 1;
        continue;
      }
      if (/^\t/.test(raw)) throw new YamlError("tab indentation", this.#offset + this.#pos + 1);
      return {
        number: this.#offset + this.#pos + 1,
        indent: raw.length - raw.trimStart().length,
        text: trimmed,
      };
    }
    return undefined;
  }

  #next(): void {
    this.#rewritten.delete(this.#pos);
    this.#pos += 1;
  }

  #node(indent: number): YamlValue {
    const line = this.#peek();
    if (line === undefined || line.indent < indent) return null;
    if (isSequenceItem(line.text)) return this.#sequence(line.indent);
    if (splitKey(line.text) !== undefined) return this.#mapping(line.indent);
    this.#next();
    return scalarOrFlow(line.text, line.number);
  }

  #sequence(indent: number): YamlValue[] {
    const items: YamlValue[] = [];
    for (let line = this.#peek(); line !== undefined && line.indent === indent; line = this.#peek()) {
      if (!isSequenceItem(line.text)) break;
      const rest = line.text.slice(1);
      const content = rest.trimStart();
      if (content === "" || content.startsWith("#")) {
        this.#next();
        const nested = this.#peek();
        items.push(nested !== undefined && nested.indent > indent ? this.#node(nested.indent) : null);
        continue;
      }
      // The entry's content starts a node at its own column: `- a: 1` is a mapping at indent+2.
      const column = indent + 1 + (rest.length - content.length);
      this.#rewritten.set(this.#pos, { number: line.number, indent: column, text: content });
      items.push(this.#node(column));
    }
    return items;
  }

  #mapping(indent: number): { [key: string]: YamlValue } {
    const map: { [key: string]: YamlValue } = {};
    for (let line = this.#peek(); line !== undefined && line.indent === indent; line = this.#peek()) {
      if (isSequenceItem(line.text)) break;
      const pair = splitKey(line.text);
      if (pair === undefined) throw new YamlError(`expected "key: value", got "${line.text}"`, line.number);
      const [key, rest] = pair;
      if (Object.hasOwn(map, key)) throw new YamlError(`duplicate key "${key}"`, line.number);
      this.#next();
      const value = stripComment(rest);
      if (value === "") {
        const nested = this.#peek();
        if (nested !== undefined && nested.indent > indent) map[key] = this.#node(nested.indent);
        else if (nested !== undefined && nested.indent === indent && isSequenceItem(nested.text))
          map[key] = this.#sequence(indent);
        else map[key] = null;
      } else if (/^[|>]/.test(value)) {
        map[key] = this.#blockScalar(value, indent, line.number);
      } else {
        map[key] = scalarOrFlow(value, line.number);
        const after = this.#peek();
        if (after !== undefined && after.indent > indent) {
          throw new YamlError(`unsupported continuation of "${key}"`, after.number);
        }
      }
    }
    return map;
  }

  /** `|`, `|-`, `|+`, `>`, `>-`: the raw lines more indented than the key. */
  #blockScalar(header: string, parentIndent: number, number: number): string {
    const match = /^([|>])([+-]?)$/.exec(header);
    if (match === null) throw new YamlError(`unsupported block scalar header "${header}"`, number);
    const [, style, chomp] = match;
    const lines: string[] = [];
    let blockIndent: number | undefined;
    while (this.#pos < this.#raw.length) {
      const raw = this.#raw[this.#pos] ?? "";
      if (raw.trim() === "") {
        lines.push("");
        this.#pos += 1;
        continue;
      }
      const indent = raw.length - raw.trimStart().length;
      if (indent <= parentIndent) break;
      blockIndent ??= indent;
      if (indent < blockIndent) throw new YamlError("less indented line in a block scalar", number);
      lines.push(raw.slice(blockIndent));
      this.#pos += 1;
    }
    // Trailing blank lines belong to the chomping, not the content.
    let trailing = 0;
    while (lines.length > 0 && lines.at(-1) === "") {
      lines.pop();
      trailing += 1;
    }
    let text = style === "|" ? lines.join("\n") : foldLines(lines);
    if (lines.length === 0) return "";
    if (chomp === "") text += "\n";
    else if (chomp === "+") text += "\n" + "\n".repeat(trailing);
    return text;
  }
}

function foldLines(lines: readonly string[]): string {
  let out = "";
  for (const [i, line] of lines.entries()) {
    if (i === 0) out = line;
    else if (line === "" || lines[i - 1] === "") out += "\n" + line;
    else out += " " + line;
  }
  return out;
}

function isSequenceItem(text: string): boolean {
  return text === "-" || text.startsWith("- ");
}

const KEY_RE =
  /^("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s#'"{[\]},&*!|>%@`-][^#]*?|-[^\s#][^#]*?)\s*:(?:\s+(.*))?$/;

/** `key: rest` (rest may be empty), or undefined when the line is not a mapping entry. */
function splitKey(text: string): [string, string] | undefined {
  const match = KEY_RE.exec(text);
  if (match === null) return undefined;
  const rawKey = match[1] ?? "";
  const key = rawKey.startsWith('"')
    ? (JSON.parse(rawKey) as string)
    : rawKey.startsWith("'")
      ? rawKey.slice(1, -1).replaceAll("''", "'")
      : rawKey;
  return [key, match[2] ?? ""];
}

/** A plain scalar ends at " #"; quoted scalars keep their #. */
function stripComment(text: string): string {
  if (text.startsWith('"') || text.startsWith("'")) return text.trim();
  const at = text.search(/\s#/);
  return (at === -1 ? text : text.slice(0, at)).trim();
}

function scalarOrFlow(text: string, number: number): YamlValue {
  const value = stripComment(text);
  if (value.startsWith("[") || value.startsWith("{")) {
    const reader = new FlowReader(value, number);
    const result = reader.value();
    reader.end();
    return result;
  }
  return scalar(value, number);
}

function scalar(value: string, number: number): YamlValue {
  if (value.startsWith('"')) {
    if (!/^"(?:[^"\\]|\\.)*"$/.test(value)) throw new YamlError(`unterminated string ${value}`, number);
    return JSON.parse(value) as string;
  }
  if (value.startsWith("'")) {
    if (!/^'(?:[^']|'')*'$/.test(value)) throw new YamlError(`unterminated string ${value}`, number);
    return value.slice(1, -1).replaceAll("''", "'");
  }
  if (/^[&*!%@`]/.test(value)) throw new YamlError(`unsupported YAML feature in "${value}"`, number);
  if (value === "" || value === "~" || value === "null") return null;
  if (value === "true") return true;
  if (value === "false") return false;
  if (/^[-+]?(0|[1-9][0-9]*)$/.test(value)) return Number(value);
  if (/^[-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$/.test(value)) return Number(value);
  return value;
}

class FlowReader {
  readonly #text: string;
  readonly #number: number;
  #at = 0;

  constructor(text: string, number: number) {
    this.#text = text;
    this.#number = number;
  }

  end(): void {
    this.#space();
    if (this.#at !== this.#text.length) this.#fail("trailing characters");
  }

  value(): YamlValue {
    this.#space();
    const c = this.#text[this.#at];
    if (c === "[") return this.#list();
    if (c === "{") return this.#map();
    return scalar(this.#token(), this.#number);
  }

  #list(): YamlValue[] {
    this.#at += 1;
    const items: YamlValue[] = [];
    for (;;) {
      this.#space();
      if (this.#text[this.#at] === "]") {
        this.#at += 1;
        return items;
      }
      items.push(this.value());
      this.#separator("]");
    }
  }

  #map(): { [key: string]: YamlValue } {
    this.#at += 1;
    const map: { [key: string]: YamlValue } = {};
    for (;;) {
      this.#space();
      if (this.#text[this.#at] === "}") {
        this.#at += 1;
        return map;
      }
      const key = scalar(this.#token(true), this.#number);
      this.#space();
      if (this.#text[this.#at] !== ":") this.#fail("expected ':'");
      this.#at += 1;
      map[text(key) ?? "null"] = this.value();
      this.#separator("}");
    }
  }

  #separator(close: string): void {
    this.#space();
    const c = this.#text[this.#at];
    if (c === ",") this.#at += 1;
    else if (c !== close) this.#fail(`expected ',' or '${close}'`);
  }

  #token(isKey = false): string {
    const rest = this.#text.slice(this.#at);
    const quoted = /^("(?:[^"\\]|\\.)*"|'(?:[^']|'')*')/.exec(rest);
    if (quoted !== null) {
      this.#at += quoted[0].length;
      return quoted[0];
    }
    const plain = (isKey ? /^[^,:[\]{}]+/ : /^(?:[^,:[\]{}]|:(?=\S))+/).exec(rest);
    if (plain === null) this.#fail("expected a value");
    this.#at += plain[0].length;
    return plain[0].trim();
  }

  #space(): void {
    while (this.#text[this.#at] === " ") this.#at += 1;
  }

  #fail(message: string): never {
    throw new YamlError(`${message} at column ${this.#at + 1} of "${this.#text}"`, this.#number);
  }
}

type YamlMap = { [key: string]: YamlValue };

/** The value at `path` (keys and indexes), or undefined where the path leads nowhere. */
export function at(
  value: YamlValue | undefined,
  ...path: ReadonlyArray<string | number>
): YamlValue | undefined {
  let current: YamlValue | undefined = value;
  for (const step of path) {
    if (typeof step === "number") current = Array.isArray(current) ? current[step] : undefined;
    else current = isMap(current) ? current[step] : undefined;
  }
  return current;
}

export function isMap(value: YamlValue | undefined): value is YamlMap {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The items of a sequence, or none. */
export function items(value: YamlValue | undefined): YamlValue[] {
  return Array.isArray(value) ? value : [];
}

/** A scalar as text (numbers and booleans too), or undefined. */
export function text(value: YamlValue | undefined): string | undefined {
  return typeof value === "string" || typeof value === "number" || typeof value === "boolean"
    ? String(value)
    : undefined;
}
