/**
 * The console as the HTTP suites drive it: a request as a browser sends it (cookie, urlencoded
 * form or multipart, redirects not followed), every body handed to the suite's recorder for its
 * secret scan, and the CSRF token read from a page.
 */

export interface ConsolePage {
  status: number;
  headers: Headers;
  text: string;
}

export interface ConsoleRequestOptions {
  cookie?: string;
  /** Urlencoded; an array value repeats the field (checkboxes). */
  form?: Record<string, string | string[]>;
  multipart?: FormData;
  headers?: Record<string, string>;
}

export async function consoleRequest(
  base: string,
  method: string,
  path: string,
  options: ConsoleRequestOptions = {},
  record?: (body: string) => void,
): Promise<ConsolePage> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.cookie !== undefined) headers["cookie"] = options.cookie;
  let body: string | FormData | undefined;
  if (options.form !== undefined) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(options.form)) {
      for (const one of Array.isArray(v) ? v : [v]) params.append(k, one);
    }
    body = params.toString();
    headers["content-type"] = "application/x-www-form-urlencoded";
  }
  if (options.multipart !== undefined) body = options.multipart;
  const res = await fetch(`${base}${path}`, {
    method,
    headers,
    redirect: "manual",
    ...(body === undefined ? {} : { body }),
  });
  const text = await res.text();
  record?.(text);
  return { status: res.status, headers: res.headers, text };
}

/** The session's CSRF token, from a page's hidden `_csrf` field. */
export function csrfOf(html: string): string {
  const m = /name="_csrf" value="([^"]+)"/.exec(html);
  if (m?.[1] === undefined) throw new Error("no CSRF field on the page");
  return m[1];
}
