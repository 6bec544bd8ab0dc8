/**
 * Valid JSON that Postgres' jsonb refuses: the escape `\u0000` ("cannot be converted to text") and an
 * unpaired surrogate escape such as `\ud800` ("invalid input syntax"). Only an escape can produce
 * either: a raw NUL is not valid JSON and raw invalid UTF-8 decodes to U+FFFD. Every such escape is
 * matched; a false positive (an escaped backslash before `u0000`, a surrogate pair written as escapes)
 * only costs the slower path.
 */
const RISKY_ESCAPE = /\\u(?:0000|[dD][89a-fA-F])/;

/** What the jsonb copy holds in place of a NUL or an unpaired surrogate, in keys and string values alike. */
export const JSONB_REPLACEMENT = '\ufffd';

// eslint-disable-next-line no-control-regex -- matching NUL is the point
const NOT_JSONB_SAFE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

export interface JsonbDocument {
  /** The value billing reads: the parsed body, or a copy with the replacements below. */
  json: unknown;
  /** JSON text for a jsonb column: the body itself when jsonb accepts it, else `json` serialised. */
  text: string;
}

/**
 * A parsed JSON body made storable as jsonb: every NUL character and unpaired surrogate in a string
 * or a key becomes U+FFFD; nothing else changes. Pure. `raw` is the text `parsed` came from.
 */
export function jsonbDocument(raw: string, parsed: unknown): JsonbDocument {
  if (!RISKY_ESCAPE.test(raw)) return { json: parsed, text: raw };
  const json = neutralise(parsed);
  return { json, text: JSON.stringify(json) };
}

function neutralise(v: unknown): unknown {
  if (typeof v === 'string') return v.replace(NOT_JSONB_SAFE, JSONB_REPLACEMENT);
  if (Array.isArray(v)) return v.map(neutralise);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    // defineProperty, not assignment: a "__proto__" key from JSON.parse stays an ordinary key.
    for (const [k, x] of Object.entries(v)) Object.defineProperty(out, k.replace(NOT_JSONB_SAFE, JSONB_REPLACEMENT), { value: neutralise(x), enumerable: true, writable: true, configurable: true });
    return out;
  }
  return v;
}
