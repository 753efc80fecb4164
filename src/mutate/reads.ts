import { assign, createMachine } from 'xstate';
import type { AnyStateMachine } from 'xstate';

/**
 * Which context fields of a machine are read, found by watching the reads (for the step check modulo
 * write-only context, src/mutate/steps.ts). Granularity is the top-level field: touching `context.f` in
 * any way (get, `in`, own-property test) reads all of `f`, nested records included. Anything that
 * enumerates a context (spread, Object.keys/entries, for…in) reads every field, since what it does with
 * them cannot be seen. One enumeration is not a read: JSON serialisation by the explorer's keying
 * functions (KEY_COPIES), which turn a snapshot into the text that names it (worlds are interned and
 * deduplicated by it); a JSON serialisation from anywhere else reads every field.
 *
 * Two kinds of readers:
 * - outside the machine (the composed world, its wiring, invariants, observers): each context a
 *   recorded snapshot holds is replaced by a view (`outsideView`) while the original is explored;
 * - the machine's own code (guards, actions, assign functions, `params` functions, delays, output): a
 *   copy of the machine whose every user function receives a viewed context (`trackedMachine`). xstate's
 *   own copy of the context into the next snapshot (Object.assign in its assign) is not user code and
 *   is not watched: it moves each field to the same field.
 *
 * When unsure, a read: a built-in action other than assign, a higher-order guard, or an invoked actor in
 * the machine makes every field count as read (none of the production machines has one).
 */

/** Fields read (top level), or all of them. */
export interface FieldReads {
  fields: Set<string>;
  all: boolean;
}

/** The same as plain data (it travels to worker threads). */
export interface FieldReadsData {
  fields: string[];
  all: boolean;
}

export const newReads = (): FieldReads => ({ fields: new Set(), all: false });
export const readsData = (r: FieldReads): FieldReadsData => ({ fields: [...r.fields].sort(), all: r.all });
export const isRead = (r: FieldReadsData | FieldReads | undefined, field: string): boolean =>
  r !== undefined && (r.all || (r.fields instanceof Set ? r.fields.has(field) : r.fields.includes(field)));

/**
 * The explorer's functions that serialise a context to key a snapshot or a world (src/explore/composed.ts
 * snapId and renamedSnapId, src/mutate/explore.ts snapText, src/mutate/steps.ts answerParts and snapKey).
 * A serialisation from any other function is a read of every field.
 */
export const KEY_COPIES: ReadonlySet<string> = new Set(['snapId', 'renamedSnapId', 'snapText', 'answerParts', 'snapKey']);

const THIS_FILE = /[\\/]reads\.[jt]s/;
/** The name of the function that called into the view (first frame outside this file and JSON.stringify). */
function callerName(): string | undefined {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 10;
  const stack = new Error().stack ?? '';
  Error.stackTraceLimit = limit;
  for (const line of stack.split('\n').slice(1)) {
    if (THIS_FILE.test(line) || line.includes('JSON.stringify') || line.includes('<anonymous>')) continue;
    const m = /^\s*at (?:async )?(?:new )?([^\s(]+) \(/.exec(line);
    return m ? m[1]!.slice(m[1]!.lastIndexOf('.') + 1) : undefined;
  }
  return undefined;
}

const raws = new WeakMap<object, object>();
/** The plain context behind a view (the context itself when it is not one). */
export function rawContext<T>(ctx: T): T {
  return (typeof ctx === 'object' && ctx !== null ? (raws.get(ctx) as T | undefined) : undefined) ?? ctx;
}

/**
 * A view of `ctx` that notes reads in `reads` (through `active()`: false while the reads are not this
 * reader's). `copies`: callers whose JSON serialisation is a copy, not a read.
 */
function view(ctx: object, reads: () => FieldReads | null, copies: ReadonlySet<string>): object {
  const field = (k: string | symbol) => {
    const r = reads();
    if (r && typeof k === 'string') r.fields.add(k);
  };
  const every = () => {
    const r = reads();
    if (r) r.all = true;
  };
  const v = new Proxy(ctx, {
    get(t, k, recv) {
      if (k === 'toJSON') {
        // JSON.stringify asks for toJSON first: serialise the plain context, and decide here whether
        // this serialisation is a key (a copy) or a read of everything.
        if (reads() !== null && !copies.has(callerName() ?? '')) every();
        return () => t;
      }
      field(k);
      return Reflect.get(t, k, recv);
    },
    has(t, k) {
      field(k);
      return Reflect.has(t, k);
    },
    getOwnPropertyDescriptor(t, k) {
      field(k);
      return Reflect.getOwnPropertyDescriptor(t, k);
    },
    ownKeys(t) {
      every();
      return Reflect.ownKeys(t);
    },
  });
  raws.set(v, ctx);
  return v;
}

/**
 * Reads of contexts by everything outside the machines, per machine id: the recorder hands the world
 * viewed contexts, and marks the stretches where the machine itself runs (`inside`), whose reads are
 * watched on the machine's own copy instead.
 */
export class OutsideReads {
  private readonly byMachine = new Map<string, FieldReads>();
  private readonly views = new WeakSet<object>();
  private depth = 0;

  /** `ctx` as the readers outside machine `id` see it (the same view for a context already viewed). */
  view<T>(id: string, ctx: T): T {
    if (typeof ctx !== 'object' || ctx === null || this.views.has(ctx)) return ctx;
    let r = this.byMachine.get(id);
    if (!r) this.byMachine.set(id, (r = newReads()));
    const mine = r;
    const v = view(ctx, () => (this.depth > 0 ? null : mine), KEY_COPIES);
    this.views.add(v);
    return v as T;
  }

  /** Run `f` as the machine's own work (its reads are not outside reads). */
  inside<T>(f: () => T): T {
    this.depth++;
    try {
      return f();
    } finally {
      this.depth--;
    }
  }

  data(): Record<string, FieldReadsData> {
    const out: Record<string, FieldReadsData> = {};
    for (const [id, r] of this.byMachine) out[id] = readsData(r);
    return out;
  }
}

type Fn = (...a: unknown[]) => unknown;
const isPlain = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && (Object.getPrototypeOf(x) === Object.prototype || Object.getPrototypeOf(x) === null);

/**
 * A copy of `m` (same config, same implementations, same id) whose every user function sees the
 * context through a view that notes its reads in `reads`. Behaves exactly as `m`.
 */
export function trackedMachine(m: AnyStateMachine, reads: FieldReads): AnyStateMachine {
  const seen = () => reads;
  // One view per context object (a step's functions share it), so a read is a read however reached.
  const views = new WeakMap<object, object>();
  const viewOf = (ctx: object) => {
    let v = views.get(ctx);
    if (!v) views.set(ctx, (v = view(ctx, seen, new Set())));
    return v;
  };
  const withView = (args: unknown): unknown => {
    if (typeof args !== 'object' || args === null || !('context' in args)) return args;
    const ctx = (args as { context: unknown }).context;
    if (typeof ctx !== 'object' || ctx === null) return args;
    return Object.assign(Object.create(Object.getPrototypeOf(args) as object | null) as object, args, { context: viewOf(ctx) });
  };
  const fn = (f: Fn): Fn =>
    function (this: unknown, args: unknown, ...rest: unknown[]) {
      return f.call(this, withView(args), ...rest);
    };
  // A built-in action (a function carrying `resolve`): assign is rebuilt around watched functions; any
  // other is not understood, so every field counts as read.
  const action = (a: unknown): unknown => {
    if (typeof a !== 'function') return a;
    const b = a as Fn & { type?: string; resolve?: unknown; assignment?: unknown; check?: unknown };
    if (b.type === 'xstate.assign') {
      const x = b.assignment;
      if (typeof x === 'function') return assign(fn(x as Fn) as never);
      if (isPlain(x)) return assign(Object.fromEntries(Object.entries(x).map(([k, p]) => [k, typeof p === 'function' ? fn(p as Fn) : p])) as never);
      reads.all = true;
      return a;
    }
    if (b.resolve !== undefined || b.check !== undefined) {
      reads.all = true;
      return a;
    }
    return fn(b);
  };
  const deep = (x: unknown): unknown => {
    if (typeof x === 'function') return action(x);
    if (Array.isArray(x)) return x.map(deep);
    if (isPlain(x)) {
      // An invoked actor runs code this copy does not watch.
      if (x.invoke !== undefined) reads.all = true;
      return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, deep(v)]));
    }
    return x;
  };
  const impl = m.implementations as unknown as Record<string, Record<string, unknown> | undefined>;
  if (impl.actors && Object.keys(impl.actors).length > 0) reads.all = true;
  const implementations = {
    ...impl,
    actions: Object.fromEntries(Object.entries(impl.actions ?? {}).map(([k, a]) => [k, action(a)])),
    guards: Object.fromEntries(Object.entries(impl.guards ?? {}).map(([k, g]) => [k, action(g)])),
    delays: Object.fromEntries(Object.entries(impl.delays ?? {}).map(([k, d]) => [k, typeof d === 'function' ? fn(d as Fn) : d])),
  };
  const t = createMachine(deep(m.config) as never, implementations as never) as unknown as AnyStateMachine;
  if (t.id !== m.id) throw new Error(`tracked copy of ${m.id} has id ${t.id}`);
  return t;
}
