/**
 * JSON exactly as Go's encoding/json writes it, for output that existing users diff or parse byte for byte
 * (`appsctl generate-terraform-data` = `json.MarshalIndent(data, "", "\t")`).
 *
 * Differences from JSON.stringify that matter: `<`, `>`, `&`, U+2028 and U+2029 are escaped (Go's escapeHTML default),
 * control characters use lowercase `\u00xx` except `\b \f \n \r \t` (Go ≥ 1.22), and map keys are sorted by their
 * UTF-8 bytes (JS sorts UTF-16 code units, which differs above U+FFFF). Plain objects here play the part of Go
 * structs and keep their insertion order; use `GoMap` for a Go map.
 */
export class GoMap<V> {
  constructor(readonly entries: ReadonlyMap<string, V> | Record<string, V>) {}
  sortedEntries(): Array<[string, V]> {
    const list = this.entries instanceof Map ? [...this.entries] : Object.entries(this.entries);
    return list.sort(([a], [b]) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')));
  }
}

export function goMarshalIndent(value: unknown, prefix = '', indent = '\t'): string {
  return encode(value, prefix, indent, 0);
}

export function goMarshal(value: unknown): string {
  return encode(value, undefined, undefined, 0);
}

function encode(value: unknown, prefix: string | undefined, indent: string | undefined, depth: number): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return goQuote(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`json: unsupported value: ${value}`);
    return JSON.stringify(value);
  }
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  const pretty = prefix !== undefined && indent !== undefined;
  const nl = (d: number) => (pretty ? `\n${prefix}${indent.repeat(d)}` : '');
  const colon = pretty ? ': ' : ':';
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    const items = value.map((v) => nl(depth + 1) + encode(v, prefix, indent, depth + 1));
    return `[${items.join(',')}${nl(depth)}]`;
  }
  const entries = value instanceof GoMap ? value.sortedEntries() : Object.entries(value as object);
  const fields = entries.filter(([, v]) => v !== undefined);
  if (fields.length === 0) return '{}';
  const items = fields.map(([k, v]) => `${nl(depth + 1)}${goQuote(k)}${colon}${encode(v, prefix, indent, depth + 1)}`);
  return `{${items.join(',')}${nl(depth)}}`;
}

const SHORT_ESCAPES: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const short = SHORT_ESCAPES[ch];
    const cp = ch.codePointAt(0)!;
    if (short !== undefined) out += short;
    else if (cp < 0x20 || ch === '<' || ch === '>' || ch === '&' || cp === 0x2028 || cp === 0x2029) {
      out += `\\u${cp.toString(16).padStart(4, '0')}`;
    } else if (cp >= 0xd800 && cp <= 0xdfff) {
      out += '\\ufffd'; // a lone surrogate is what invalid UTF-8 becomes; Go writes it as an escaped replacement char
    } else out += ch;
  }
  return `${out}"`;
}
