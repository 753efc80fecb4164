/**
 * The sync notification a context server attaches to each transfer, and the generation server reads
 * when the data has landed: which request, and which share of its blocks the transfer completes.
 *
 * Text `s/<index>/<of>/<id>`, the request id last so it may hold any character. It was JSON: one
 * stringify and one parse per transfer, a third of the JSON calls the servers made per request
 * (`docs/performance.md`, nineteenth session).
 */
export interface SyncNote {
  id: string;
  index: number;
  of: number;
}

const PREFIX = 's/';
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeSyncNote(n: SyncNote): Uint8Array {
  if (!Number.isSafeInteger(n.index) || !Number.isSafeInteger(n.of) || n.of < 1 || n.index < 0 || n.index >= n.of) throw new RangeError(`sync note: share ${n.index} of ${n.of}`);
  return encoder.encode(`${PREFIX}${n.index}/${n.of}/${n.id}`);
}

/** A non-negative decimal in `s[from, to)`, without sign, spaces or leading zeros; -1 if it is not one. */
function decimal(s: string, from: number, to: number): number {
  if (to <= from || to - from > 15 || (to - from > 1 && s.charCodeAt(from) === 48)) return -1;
  let v = 0;
  for (let i = from; i < to; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

/** The note in these bytes, or null when they are not one (another sender's notification, or damage). */
export function parseSyncNote(bytes: Uint8Array): SyncNote | null {
  const s = decoder.decode(bytes);
  if (!s.startsWith(PREFIX)) return null;
  const a = s.indexOf('/', PREFIX.length);
  const b = a < 0 ? -1 : s.indexOf('/', a + 1);
  if (b < 0) return null;
  const index = decimal(s, PREFIX.length, a);
  const of = decimal(s, a + 1, b);
  if (index < 0 || of < 1 || index >= of) return null;
  return { id: s.slice(b + 1), index, of };
}
