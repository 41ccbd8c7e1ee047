/**
 * Reading console form posts (`application/x-www-form-urlencoded`): fields by name, trimmed,
 * with repeated names kept for checkboxes and multi-selects.
 */
import { BadRequestError } from "../errors.ts";
import type { GatewayRequest } from "../http_types.ts";

export class AdminForm {
  readonly #params: URLSearchParams;

  constructor(params: URLSearchParams) {
    this.#params = params;
  }

  /** The trimmed value, or undefined when absent or blank. */
  get(name: string): string | undefined {
    const v = this.#params.get(name);
    if (v === null) return undefined;
    const t = v.trim();
    return t === "" ? undefined : t;
  }

  /** The value as sent (not trimmed), or undefined when absent. */
  raw(name: string): string | undefined {
    return this.#params.get(name) ?? undefined;
  }

  all(name: string): string[] {
    return this.#params
      .getAll(name)
      .map((v) => v.trim())
      .filter((v) => v !== "");
  }

  /** A checkbox: present and not "off"/"false". */
  checked(name: string): boolean {
    const v = this.#params.get(name);
    return v !== null && v !== "off" && v !== "false";
  }
}

/** The form of a POST: urlencoded only (multipart uploads are read by their own route). */
export function readForm(req: GatewayRequest): AdminForm {
  const type = (req.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
  if (req.rawBody.length === 0) return new AdminForm(new URLSearchParams());
  if (type !== "application/x-www-form-urlencoded") {
    throw new BadRequestError("a console form must be sent as application/x-www-form-urlencoded", {
      details: { content_type: type },
    });
  }
  const text = new TextDecoder("utf-8", { fatal: true });
  let decoded: string;
  try {
    decoded = text.decode(req.rawBody);
  } catch (err) {
    throw new BadRequestError("the form is not valid UTF-8", { cause: err });
  }
  return new AdminForm(new URLSearchParams(decoded));
}

export function emptyForm(): AdminForm {
  return new AdminForm(new URLSearchParams());
}
