import type { EventObject } from 'xstate';

/**
 * Code generation for compiled machines: per state configuration, one JavaScript function that selects
 * the transitions an event enables (guards inline, in xstate's order) and runs the plan of that selection
 * as straight-line code (the machine's own guard, assign and action functions called directly, constant
 * params and timer operations bound once). It replaces, for that configuration, the interpreter's walk
 * over selectors and its loop over a plan's ops; the plans stay the source, and the code is made from
 * them on a configuration's first step (a plan changed before that is what the code runs: the canaries
 * in test/step rely on it).
 *
 * The generated code runs inside a Run (compile.ts) and does exactly what Run.exec does for each op; the
 * oracle test compares it with xstate on every explored edge. What it does not generate — a selection
 * with more than MAX_MASK_BITS candidate transitions, or eventless transitions in more than one region —
 * it hands back to the interpreter (`fallback`), counted in GeneratedStats.
 */

/** The parts of compile.ts's types the generator reads (kept structural: no runtime import cycle). */
export interface GenOp {
  k: 'assign' | 'effect' | 'arm' | 'cancel' | 'doneEvent' | 'machineDone';
  type: string;
  assignment: unknown;
  id: unknown;
  event: unknown;
  delay: unknown;
  params: { p: unknown; fn: boolean };
  completionId: string;
  keys: string[] | null;
}
export interface GenGuard {
  impl: unknown;
  params: { p: unknown; fn: boolean };
  inline: boolean;
}
export interface GenTransition {
  id: number;
  guard: GenGuard | null;
}
export interface GenSelector {
  own: GenTransition[];
  kids: GenSelector[];
  parallel: boolean;
  flat: boolean;
}
export interface GenPlan {
  ops: GenOp[];
  next: unknown;
  moved: boolean;
}

/** What the generator asks of the compiled machine for one configuration. */
export interface GenSource {
  machineId: string;
  cfgIndex: number;
  /** Every event type some node of the configuration has transitions for. */
  eventTypes: string[];
  selector(eventType: string): GenSelector | null;
  /** The plan of these transitions (in this order) from the configuration. */
  plan(ts: GenTransition[]): GenPlan;
  /** The eventless transitions, when exactly one region has any (else null: interpreted). */
  eventlessChain: GenTransition[] | null;
  hasEventless: boolean;
}

/** Helpers the generated code calls (compile.ts's, passed in: this module imports nothing at run time from it). */
export interface GenHelpers {
  /** The params of an action that has none. */
  noParams: unknown;
  emptyEffects: unknown[];
  emptyTimers: unknown[];
  /** A new merge site for a function-form assign's partial (the generated code calls its `m`). */
  mergeSite(): MergeSite;
}

/** Where a function-form assign's partial is merged into the run's context: `m` may replace itself at its first call. */
export interface MergeSite {
  m: (ctx: object, partial: object) => void;
}

/** A generated step function: runs the event's microstep on `run` and says whether a transition was selected. */
export type GeneratedMicro = (run: unknown, ev: EventObject) => boolean;
/** Generated selection alone: whether the event would select a transition on this context (nothing is run). */
export type GeneratedTakes = (ctx: unknown, ev: EventObject) => boolean;
/** Generated ops with no selection (a machine's initial microstep). */
export type GeneratedOps = (run: unknown, ev: EventObject) => void;

export interface Generated {
  micro: GeneratedMicro;
  takes: GeneratedTakes;
  /** The eventless microstep (null: the configuration has no eventless transitions, or they are interpreted). */
  always: GeneratedMicro | null;
  /** Event types whose selection was left to the interpreter. */
  fallbacks: string[];
  source: string;
}

/** Candidate transitions a selection bitmask may name (beyond: interpreted). */
const MAX_MASK_BITS = 24;
/** Different selections one (configuration, event type) may generate plans for (beyond: interpreted). */
const MAX_SELECTIONS = 64;

class Emitter {
  readonly consts: unknown[] = [];
  private readonly index = new Map<unknown, number>();
  /** Where the generated code finds the context: the run's (steps), or a parameter (selection alone). */
  ctx = 'run.ctx';
  constructor(private readonly helpers: GenHelpers) {}

  /** A closure constant's name (one per distinct value). */
  k(v: unknown): string {
    let i = this.index.get(v);
    if (i === undefined) {
      i = this.consts.length;
      this.consts.push(v);
      this.index.set(v, i);
    }
    return `k${i}`;
  }

  /** A new `{ context, event }` argument (the interpreter's scopeOf, which says why it is new each call). */
  scope(): string {
    return `{ context: ${this.ctx}, event: ev }`;
  }

  params(src: { p: unknown; fn: boolean }): string {
    if (src.fn) return `${this.k(src.p)}(${this.scope()})`;
    return src.p === undefined ? 'undefined' : this.k(src.p);
  }

  guard(g: GenGuard): string {
    const params = g.inline ? 'undefined' : this.params(g.params);
    return `${this.k(g.impl)}(${this.scope()}, ${params})`;
  }

  /**
   * Append to one of the run's lists as Run.exec does (src/core/lists.ts's appended, written out: a call
   * from generated code to the helper was not inlined, a generic call per effect).
   */
  private push(list: 'effects' | 'timers', empty: unknown[], item: string): string {
    return `{ const x = ${item}; const l = run.${list}; if (l === ${this.k(empty)}) run.${list} = [x]; else if (l.length === 1) run.${list} = [l[0], x]; else if (l.length === 2) run.${list} = [l[0], l[1], x]; else l.push(x); }`;
  }

  op(o: GenOp): string {
    switch (o.k) {
      case 'effect': {
        const p = o.params.fn || o.params.p !== undefined ? `(${this.params(o.params)} ?? ${this.k(this.helpers.noParams)})` : this.k(this.helpers.noParams);
        return this.push('effects', this.helpers.emptyEffects, `{ type: ${JSON.stringify(o.type)}, params: ${p} }`);
      }
      case 'assign': {
        const lines = [`{ const params = ${this.params(o.params)}; const a0 = run.assignConsts; const a = { context: run.ctx, event: ev, spawn: a0.spawn, self: a0.self, system: a0.system };`]; // new per assign: see scopeOf
        if (typeof o.assignment === 'function') {
          lines.push(`const partial = ${this.k(o.assignment)}(a, params); run.ownContext(); ${this.k(this.helpers.mergeSite())}.m(run.ctx, partial);`);
        } else {
          const a = o.assignment as Record<string, unknown>;
          const keys = o.keys!;
          // Every value from the context as it was, then all written (xstate's object form).
          keys.forEach((key, i) => lines.push(`const v${i} = ${typeof a[key] === 'function' ? `${this.k(a[key])}(a, params)` : this.k(a[key])};`));
          lines.push('run.ownContext(); const c = run.ctx;');
          keys.forEach((key, i) => lines.push(`c[${JSON.stringify(key)}] = v${i};`));
        }
        lines.push('run.version++; }');
        return lines.join(' ');
      }
      case 'arm': {
        if (typeof o.event !== 'function' && typeof o.delay === 'number') {
          // Nothing computed: the same timer operation every time, made once.
          const t = Object.freeze({ op: 'arm', id: o.id, event: o.event, delay: o.delay });
          return `${o.params.fn ? `${this.params(o.params)}; ` : ''}${this.push('timers', this.helpers.emptyTimers, this.k(t))}`;
        }
        // Computed event or delay: the interpreter's general case.
        return `run.exec(${this.k([o])}, ev);`;
      }
      case 'cancel': {
        if (typeof o.id === 'string') {
          const t = Object.freeze({ op: 'cancel', id: o.id });
          return `${o.params.fn ? `${this.params(o.params)}; ` : ''}${this.push('timers', this.helpers.emptyTimers, this.k(t))}`;
        }
        return `run.exec(${this.k([o])}, ev);`;
      }
      case 'doneEvent':
        return `run.queue.push(${this.k(o.event)});`;
      case 'machineDone':
        return `run.machineDone(${JSON.stringify(o.completionId)});`;
    }
  }

  plan(p: GenPlan): string {
    const body = p.ops.map((o) => this.op(o));
    if (p.moved) body.push(`run.cfg = ${this.k(p.next)}; run.version++;`);
    return body.join('\n      ');
  }
}

/** The candidate transitions of a selector, in traversal order. */
function candidates(sel: GenSelector, out: GenTransition[] = []): GenTransition[] {
  for (const k of sel.kids) candidates(k, out);
  for (const t of sel.own) out.push(t);
  return out;
}

/**
 * Every selection a selector can make (guards ignored), each in the order `collect` makes it: kids'
 * selections first (a parallel node's regions each none or one of theirs), its own transition only when
 * no kid selected one. The compiler enumerates its plans ahead of time with it too.
 */
export function selections<T, S extends { own: T[]; kids: S[]; parallel: boolean }>(sel: S): T[][] {
  let fromKids: T[][] = [];
  if (sel.parallel) {
    let product: T[][] = [[]];
    for (const k of sel.kids) {
      const opts: T[][] = [[], ...selections<T, S>(k)];
      product = product.flatMap((p) => opts.map((o) => [...p, ...o]));
    }
    fromKids = product.filter((p) => p.length > 0);
  } else if (sel.kids.length === 1) fromKids = selections<T, S>(sel.kids[0]!);
  return [...fromKids, ...sel.own.map((t) => [t])];
}

/**
 * Statements that run `collect(sel)`: set bits of `m` for the transitions selected and `r<n>` to whether
 * this selector selected one. Mirrors compile.ts's collect exactly.
 */
function collectCode(e: Emitter, sel: GenSelector, bit: Map<GenTransition, number>, r: string, fresh: () => string): string {
  const out: string[] = [];
  const own = () => {
    const chain = sel.own.map((t) => `${t.guard === null ? 'true' : e.guard(t.guard)}) { m |= ${1 << bit.get(t)!}; ${r} = true; }`);
    return chain.length === 0 ? '' : `if (${chain.join(' else if (')}`;
  };
  if (sel.parallel) {
    const any = fresh();
    out.push(`let ${any} = false;`);
    for (const k of sel.kids) {
      const rk = fresh();
      out.push(`{ let ${rk} = false; ${collectCode(e, k, bit, rk, fresh)} if (${rk}) ${any} = true; }`);
    }
    out.push(`if (${any}) ${r} = true; else { ${own()} }`);
  } else if (sel.kids.length === 1) {
    const rk = fresh();
    out.push(`let ${rk} = false; ${collectCode(e, sel.kids[0]!, bit, rk, fresh)} if (${rk}) ${r} = true; else { ${own()} }`);
  } else out.push(own());
  return out.join(' ');
}

/** The first enabled transition of a flat selector (innermost state first), its plan inline. */
function flatCode(e: Emitter, src: GenSource, sel: GenSelector): string {
  const out: string[] = [];
  if (sel.kids.length === 1) out.push(flatCode(e, src, sel.kids[0]!));
  for (const t of sel.own) {
    const body = `${e.plan(src.plan([t]))}\n      return true;`;
    if (t.guard === null) {
      out.push(`{ ${body} }`);
      break; // nothing after an unguarded transition is ever selected
    }
    out.push(`if (${e.guard(t.guard)}) { ${body} }`);
  }
  return out.join('\n    ');
}

/** Whether a flat selector selects a transition: its guards in order, nothing run. */
function flatTakesCode(e: Emitter, sel: GenSelector): string {
  const out: string[] = [];
  if (sel.kids.length === 1) out.push(flatTakesCode(e, sel.kids[0]!));
  for (const t of sel.own) {
    if (t.guard === null) {
      out.push('return true;');
      break;
    }
    out.push(`if (${e.guard(t.guard)}) return true;`);
  }
  return out.join(' ');
}

/** The body of a selection alone (`takes`): true when some transition is selected. */
function takesCode(e: Emitter, sel: GenSelector): string {
  if (sel.flat) return `${flatTakesCode(e, sel)} return false;`;
  // (The mask is computed and not read: only whether something was selected matters here.)
  const cands = candidates(sel);
  const bit = new Map(cands.map((t, i) => [t, i] as const));
  let n = 0;
  return `let m = 0; let r = false; ${collectCode(e, sel, bit, 'r', () => `r${n++}`)} return r;`;
}

function selectionCode(e: Emitter, src: GenSource, sel: GenSelector): string | null {
  if (sel.flat) return `${flatCode(e, src, sel)}\n    return false;`;
  const cands = candidates(sel);
  if (cands.length > MAX_MASK_BITS) return null;
  const sels = selections<GenTransition, GenSelector>(sel);
  if (sels.length > MAX_SELECTIONS) return null;
  const bit = new Map(cands.map((t, i) => [t, i] as const));
  let n = 0;
  const fresh = () => `r${n++}`;
  const lines = [`let m = 0; let r = false; ${collectCode(e, sel, bit, 'r', fresh)}`, 'switch (m) {', '  case 0: return false;'];
  const done = new Set<number>();
  for (const s of sels) {
    const mask = s.reduce((acc, t) => acc | (1 << bit.get(t)!), 0);
    if (done.has(mask)) continue;
    done.add(mask);
    lines.push(`  case ${mask}: { ${e.plan(src.plan(s))}\n      return true; }`);
  }
  lines.push(`  default: throw new Error(${JSON.stringify(`generated step of '${src.machineId}': a selection no plan was generated for`)} + ' (mask ' + m + ')');`, '}');
  return lines.join('\n    ');
}

export function generate(src: GenSource, helpers: GenHelpers, rewrite?: (source: string) => string): Generated {
  const e = new Emitter(helpers);
  const fallbacks: string[] = [];
  const cases: string[] = [];
  for (const type of src.eventTypes) {
    const sel = src.selector(type);
    if (sel === null) continue;
    const code = selectionCode(e, src, sel);
    if (code === null) {
      fallbacks.push(type);
      cases.push(`case ${JSON.stringify(type)}: return run.microInterpreted(ev);`);
    } else cases.push(`case ${JSON.stringify(type)}: {\n    ${code}\n  }`);
  }
  // Function names carry the machine and configuration: profilers show them (perf's map has no sourceURL).
  const name = `${src.machineId.replace(/\W/g, '_')}_config${src.cfgIndex}`;
  const micro = `function ${name}_step(run, ev) {\n  switch (ev.type) {\n  ${cases.join('\n  ')}\n  default: return false;\n  }\n}`;
  // The same selections again, for `takes`: guards only, on a context passed in.
  e.ctx = 'ctx';
  const takesCases: string[] = [];
  for (const type of src.eventTypes) {
    const sel = src.selector(type);
    if (sel !== null) takesCases.push(`case ${JSON.stringify(type)}: { ${takesCode(e, sel)} }`);
  }
  const takes = `function ${name}_takes(ctx, ev) {\n  switch (ev.type) {\n  ${takesCases.join('\n  ')}\n  default: return false;\n  }\n}`;
  e.ctx = 'run.ctx';
  let always = 'null';
  if (src.eventlessChain !== null) {
    // One region's eventless transitions: the first enabled in order, as a flat selector of its own.
    const chain: GenSelector = { own: src.eventlessChain, kids: [], parallel: false, flat: true };
    always = `function ${name}_always(run, ev) {\n    ${flatCode(e, src, chain)}\n    return false;\n}`;
  } else if (src.hasEventless) fallbacks.push('(eventless)');
  const decls = e.consts.map((_, i) => `const k${i} = K[${i}];`).join('\n');
  // sourceURL: stack traces name the machine and configuration the code was made for.
  let source = `'use strict';\n${decls}\nreturn { micro: ${micro},\ntakes: ${takes},\nalways: ${always} };\n//# sourceURL=xferstate-generated/${encodeURIComponent(src.machineId)}/config-${src.cfgIndex}.js`;
  if (rewrite) source = rewrite(source);
  const made = new Function('K', source)(e.consts) as { micro: GeneratedMicro; takes: GeneratedTakes; always: GeneratedMicro | null };
  return { micro: made.micro, takes: made.takes, always: made.always, fallbacks, source };
}

/** A straight-line function for ops run with no selection (the initial microstep's entry actions). */
export function generateOps(machineId: string, ops: GenOp[], helpers: GenHelpers, rewrite?: (source: string) => string): GeneratedOps {
  const e = new Emitter(helpers);
  const body = e.plan({ ops, next: null, moved: false });
  const decls = e.consts.map((_, i) => `const k${i} = K[${i}];`).join('\n');
  let source = `'use strict';\n${decls}\nreturn function ${machineId.replace(/\W/g, '_')}_initial(run, ev) {\n      ${body}\n};\n//# sourceURL=xferstate-generated/${encodeURIComponent(machineId)}/initial.js`;
  if (rewrite) source = rewrite(source);
  return new Function('K', source)(e.consts) as GeneratedOps;
}
