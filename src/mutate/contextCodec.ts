import type { FinishedRecord } from '../../machines/index.js';
import { FinishedRecords, RequestQueue, RequestTable } from '../../machines/index.js';

/**
 * Machine contexts as plain data, and back. A step record is computed in one worker thread and checked
 * in others, and a structured clone keeps plain objects and arrays but not prototypes: a RequestTable,
 * a RequestQueue or FinishedRecords would arrive as its internals, without its methods, and every
 * recorded step of its machine would throw in the mutant and the original alike. Persistent values travel tagged and are rebuilt on
 * arrival. A value of any other class is refused here, so a new kind of context value fails loudly
 * instead of silently disabling the step check.
 */
const TABLE = '\u0000requestTable';
const QUEUE = '\u0000requestQueue';
const FINISHED = '\u0000finishedRecords';

export function toPlain(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (v instanceof RequestTable) return { [TABLE]: (v as RequestTable<unknown>).pairs().map(([k, x]) => [k, toPlain(x)]) };
  if (v instanceof FinishedRecords) return { [FINISHED]: v.items().map(toPlain) };
  if (v instanceof RequestQueue) return { [QUEUE]: (v as RequestQueue<{ request: string }>).items().map(toPlain) };
  if (Array.isArray(v)) return v.map(toPlain);
  const proto = Object.getPrototypeOf(v) as unknown;
  if (proto !== Object.prototype && proto !== null) throw new Error(`a machine context holds a ${(v as object).constructor?.name ?? 'class'} instance, which a step record cannot carry between threads (src/mutate/contextCodec.ts)`);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = toPlain(x);
  return out;
}

export function fromPlain(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map(fromPlain);
  const o = v as Record<string, unknown>;
  if (TABLE in o) return RequestTable.of((o[TABLE] as Array<[string, unknown]>).map(([k, x]) => [k, fromPlain(x)] as const));
  if (FINISHED in o) return FinishedRecords.of((o[FINISHED] as unknown[]).map((x) => fromPlain(x) as FinishedRecord));
  if (QUEUE in o) return RequestQueue.of((o[QUEUE] as unknown[]).map((x) => fromPlain(x) as { request: string }));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(o)) out[k] = fromPlain(x);
  return out;
}
