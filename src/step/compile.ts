import { createEmptyActor } from 'xstate';
import type { AnyMachineSnapshot, AnyStateMachine, EventObject } from 'xstate';
import type { Effect, Snap, Step, TimerOp } from './stepper.js';
import { NO_PARAMS } from './stepper.js';
import { appended } from '../core/lists.js';
import { OWN } from '../../machines/common.js';
import type { Ownable } from '../../machines/common.js';
import type { GeneratedOps, GenHelpers, Generated, GenOp, GenPlan, GenSource, MergeSite } from './generate.js';
import { generate, generateOps, selections } from './generate.js';

/**
 * The compiler: from a machine's state nodes (xstate v5's `machine.root`, read-only) it builds, for each
 * state configuration, the candidate transitions per event type and, for each set of transitions that
 * can be taken together, a plan — the exit, transition and entry actions in xstate's order, the target
 * configuration, the timers to arm and cancel, and completion (done events, final status, output).
 * Plans run the machine's OWN guard, assign and action implementations; nothing is written twice.
 *
 * Semantics follow xstate 5.33's macrostep (stateUtils.ts: transitionNode, microstep, enterStates,
 * exitStates, computeExitSet/EntrySet, removeConflictingTransitions, selectEventlessTransitions); the
 * oracle test (test/step/oracle.test.ts) checks it against xstate on every explored edge. What it does
 * not implement it refuses when the machine is compiled (UnsupportedMachineError names the feature).
 */
export class UnsupportedMachineError extends Error {
  constructor(machine: string, feature: string) {
    super(`compiled stepper: machine '${machine}' uses ${feature}, which the compiler does not support`);
    this.name = 'UnsupportedMachineError';
  }
}

// ---- the parts of xstate's StateNode the compiler reads (internal, read-only) ----
interface XTransition {
  target?: XNode[];
  source: XNode;
  actions: unknown[];
  reenter: boolean;
  guard?: unknown;
  eventType: string | null;
}
interface XNode {
  id: string;
  key: string;
  type: 'atomic' | 'compound' | 'parallel' | 'final' | 'history';
  parent?: XNode;
  states: Record<string, XNode>;
  entry: unknown[];
  exit: unknown[];
  transitions: Map<string, XTransition[]>;
  always?: XTransition[];
  order: number;
  tags: string[];
  output?: unknown;
  invoke: unknown[];
  initial: { target: XNode[]; actions: unknown[] };
  config: Record<string, unknown>;
}

type Fn = (...args: never[]) => unknown;

/** The methods xstate gives every snapshot: the same functions for every machine. */
interface SnapshotMethods {
  matches: Fn;
  hasTag: Fn;
  can: Fn;
  getMeta: Fn;
  toJSON: Fn;
}

type SnapshotClass = new (status: string, output: unknown, error: unknown, machine: AnyStateMachine, context: unknown, nodes: unknown, value: unknown, tags: unknown, children: object, historyValue: object) => Snap;

let sharedSnapshot: { methods: SnapshotMethods; cls: SnapshotClass } | null = null;

/**
 * Compiled snapshots are instances of one class whose prototype holds xstate's snapshot methods. xstate
 * makes them own properties, 40 bytes more per snapshot: a request starts seven actors and keeps three
 * or four alive while in flight. The fields stay own properties, in xstate's order, so its `toJSON`
 * (which spreads the own fields, less the ones it names) gives the same object. One class for every
 * machine whose methods are the same functions (one xstate): the host's sites that read a snapshot
 * see one shape.
 */
function snapshotClassFor(m: SnapshotMethods): SnapshotClass {
  const s = sharedSnapshot;
  if (s !== null && s.methods.matches === m.matches && s.methods.hasTag === m.hasTag && s.methods.can === m.can && s.methods.getMeta === m.getMeta && s.methods.toJSON === m.toJSON) return s.cls;
  const cls = function CompiledSnapshot(this: Record<string, unknown>, status: string, output: unknown, error: unknown, machine: AnyStateMachine, context: unknown, nodes: unknown, value: unknown, tags: unknown, children: object, historyValue: object) {
    this.status = status;
    this.output = output;
    this.error = error;
    this.machine = machine;
    this.context = context;
    this._nodes = nodes;
    this.value = value;
    this.tags = tags;
    this.children = children;
    this.historyValue = historyValue;
  } as unknown as SnapshotClass;
  for (const [k, f] of Object.entries(m)) Object.defineProperty(cls.prototype, k, { value: f, writable: true, configurable: true, enumerable: false });
  if (s === null) sharedSnapshot = { methods: m, cls };
  return cls;
}

type ParamSource = { p: unknown; fn: boolean };

/** One compiled action. */
export type Op =
  /** `keys`: an object-form assignment's property names, listed once (null for a function). */
  | { k: 'assign'; assignment: unknown; params: ParamSource; keys: string[] | null }
  | { k: 'effect'; type: string; params: ParamSource }
  | { k: 'arm'; id: string; event: unknown; delay: number | Fn; params: ParamSource }
  | { k: 'cancel'; id: unknown; params: ParamSource }
  /** Completion of a compound/parallel node: an `xstate.done.state.<id>` event on the internal queue. */
  | { k: 'doneEvent'; event: EventObject }
  /** The machine reached its top-level final state: status done, output computed from the context now. */
  | { k: 'machineDone'; completionId: string };

type Guard = { impl: Fn; params: ParamSource; inline: boolean } | null;

const NO_SOURCE: ParamSource = { p: undefined, fn: false };
/** Every op gets the same fields in the same order, so the hot loop over ops sees one object shape. */
function op(o: Partial<Record<'type' | 'assignment' | 'id' | 'event' | 'delay' | 'params' | 'completionId' | 'keys', unknown>> & { k: Op['k'] }): Op {
  return { k: o.k, type: o.type ?? '', assignment: o.assignment, id: o.id, event: o.event, delay: o.delay, params: o.params ?? NO_SOURCE, completionId: o.completionId ?? '', keys: o.keys ?? null } as unknown as Op;
}

interface Transition {
  id: number;
  def: XTransition;
  guard: Guard;
  ops: Op[];
  /** `[this]`, made once: most steps take exactly one transition, and need no new array for it. */
  one: Transition[];
  /**
   * The plan of this transition alone from the configuration it was last taken in (a one-entry cache
   * before the configuration's map: a transition is almost always taken from the same configuration).
   */
  lastCfg: Config | null;
  lastPlan: Plan | null;
}

/** Transition selection for one (configuration, event type): xstate's transitionNode over the active tree. */
interface Selector {
  own: Transition[];
  kids: Selector[];
  parallel: boolean;
  /** No parallel node below: at most one transition is selected, found without building a list. */
  flat: boolean;
}

export interface Plan {
  ops: Op[];
  next: Config;
  /** The configuration's node set changed (else xstate keeps the snapshot's nodes as they were). */
  moved: boolean;
}

export interface Config {
  /** The compiled machine the configuration belongs to. */
  readonly machine: CompiledMachine;
  readonly index: number;
  readonly nodes: XNode[];
  readonly key: string;
  readonly value: unknown;
  /** The value as a string: the state name when atomic at the top, else its JSON (computed once). */
  readonly valueKey: string;
  readonly tags: Set<string>;
  /** Top-level final state reached (status done). */
  readonly final: boolean;
  selectors: Map<string, Selector | null>;
  /** The first event types looked up (at most SCANNED_TYPES) and their selectors, scanned before the Map. */
  readonly selTypes: string[];
  readonly selSels: (Selector | null)[];
  /** Per atomic node (in `nodes` order): its chain of nodes (self, ancestors) that have `always` transitions. */
  eventless: Transition[][][];
  /** Some atomic node of the configuration (or an ancestor) has `always` transitions. */
  hasEventless: boolean;
  plans: Map<string, Plan>;
  /** The plans of single transitions again, by transition (no key string on the hot path). */
  planByTransition: Map<Transition, Plan>;
  /** `matches()` answers per query, filled on first use: O(1) thereafter. */
  matchCache: Map<string, boolean>;
  /** The configuration's generated step (generate.ts): undefined until its first step, null when generation is off. */
  gen: Generated | null | undefined;
  /** `acceptedOf`'s last answer: the event list it was asked about (one per role in practice) and its bits. */
  acceptedList: readonly EventObject[] | null;
  acceptedBits: number;
}

/** Steps a reused Run serves before a new one replaces it (a power of two; see takeRun). */
const RUN_RENEWAL = 256;

/** Event types per configuration whose selectors are found by a scan rather than a Map lookup. */
const SCANNED_TYPES = 12;

/** Where a configuration's node list keeps its Config (non-enumerable: snapshots compare as before). */
const CONFIG = Symbol('xferstate.config');

const EMPTY_EFFECTS: Effect[] = [];
const EMPTY_TIMERS: TimerOp[] = [];

const isBuiltin = (x: unknown): x is { type: string; resolve: Fn } => typeof x === 'function' && 'resolve' in x;

/**
 * The string V8 keeps one copy of (a property key's): a configuration's key compared with `===` is then
 * a pointer comparison. A key made by JSON.stringify is a fresh string, and the executor's comparison of
 * an actor's previous key with its new one went to V8's generic StrictEqual builtin (46 calls per request).
 */
function internalized(s: string): string {
  return Object.keys({ [s]: 0 })[0]!;
}

export interface CompileOptions {
  /** Stop enumerating plans ahead of time beyond this many; further plans are built on first use. */
  maxEagerPlans?: number;
  /**
   * Run each configuration's steps as code generated from its plans (generate.ts; default true). False
   * interprets the plans: the two are compared with xstate alike, and `bench step` measures both.
   */
  generate?: boolean;
  /** Tests only: rewrite a configuration's generated source before it is compiled (the canaries break it on purpose). */
  rewriteGenerated?: (source: string) => string;
}

/** What generation covers (for tests and `bench step`): configurations generated, and what was left to the interpreter. */
export interface GeneratedStats {
  configs: number;
  /** `<configuration value> <event type>` for each selection the generator left to the interpreter. */
  fallbacks: string[];
}

export class CompiledMachine {
  readonly id: string;
  private readonly nodeList: XNode[] = [];
  private readonly trans = new Map<XTransition, Transition>();
  private readonly configs = new Map<string, Config>();
  private readonly byNodes = new WeakMap<readonly unknown[], Config>();
  private readonly initialCfg: Config;
  private readonly initialOps: Op[];
  private readonly self = createEmptyActor();
  /** The class of this machine's snapshots (one class for every machine that borrows the same methods). */
  private readonly Snapshot: SnapshotClass;
  private readonly children = {};
  private readonly history = {};
  /** Plans built ahead of time at compile (the rest, if any, on first use). */
  readonly eagerPlans: number;

  private generateOn: boolean;
  private readonly rewriteGenerated: ((source: string) => string) | undefined;
  private readonly genStats: GeneratedStats = { configs: 0, fallbacks: [] };
  /** The initial microstep's ops as generated code (undefined until the first start; null when generation is off). */
  private initialGen: GeneratedOps | null | undefined = undefined;
  /**
   * A shallow copy of one of this machine's contexts: `{ ...o }` at a call site of this machine's own, so
   * V8's clone cache there sees one shape (a site shared by every machine went megamorphic, and its slow
   * path copied property by property: a sizeable share of a spawn).
   */
  readonly cloneContext: (o: object) => object = cloner();
  /**
   * `Object.assign(context, partial)` for a function-form assign's partial, specialized at the first start
   * to the context's keys (see merger): until then, and for a machine whose start made no context, the
   * general `Object.assign`.
   */
  merge: (ctx: object, partial: object) => void = objectAssign;
  /** Whether the merge was made (once: where code from strings is forbidden it stays Object.assign, not retried per start). */
  private mergeMade = false;

  constructor(
    readonly machine: AnyStateMachine,
    opts: CompileOptions = {},
  ) {
    this.id = machine.id;
    this.generateOn = opts.generate !== false;
    this.rewriteGenerated = opts.rewriteGenerated;
    const root = machine.root as unknown as XNode;
    const walk = (n: XNode) => {
      this.nodeList.push(n);
      for (const c of Object.values(n.states)) walk(c);
    };
    walk(root);
    for (const n of this.nodeList) this.checkNode(n);
    // Borrow xstate's snapshot methods (matches, hasTag, can, getMeta, toJSON) from a resolved snapshot.
    const probe = machine.resolveState({ value: machine.getInitialSnapshot(inertScopeFor(this.self) as never, undefined as never).value, context: {} } as never) as unknown as Record<string, Fn>;
    this.Snapshot = snapshotClassFor({ matches: probe.matches!, hasTag: probe.hasTag!, can: probe.can!, getMeta: probe.getMeta!, toJSON: probe.toJSON! });
    // The initial microstep: from [root], enter the initial configuration (xstate's initialMicrostep).
    const start = this.configFor([root]);
    const initialT: XTransition = { target: [...initialStateNodes(root)], source: root, reenter: true, actions: [], eventType: null };
    const plan = this.buildPlan(start, [{ id: -1, def: initialT, guard: null, ops: [], one: [], lastCfg: null, lastPlan: null }], true);
    this.initialCfg = plan.next;
    this.initialOps = plan.ops;
    this.eagerPlans = this.enumerate(opts.maxEagerPlans ?? 20_000);
  }

  // ---------------------------------------------------------------- load time: checks and compilation

  private refuse(feature: string): never {
    throw new UnsupportedMachineError(this.id, feature);
  }

  private checkNode(n: XNode): void {
    if (n.type === 'history') this.refuse(`a history state (#${n.id})`);
    if (n.invoke.length > 0) this.refuse(`invoke (#${n.id})`);
    if (n.parent && n.type === 'final' && n.output !== undefined) this.refuse(`output on a nested final state (#${n.id})`);
    if (n.config.route !== undefined) this.refuse(`route transitions (#${n.id})`);
    for (const [descriptor, list] of n.transitions) {
      if (descriptor.includes('*')) this.refuse(`a wildcard event descriptor '${descriptor}' (#${n.id})`);
      for (const t of list) this.compileTransition(t);
    }
    for (const t of n.always ?? []) this.compileTransition(t);
    // Initial transition actions and entry/exit actions compile (and are checked) when plans are built; do it now
    // so an unsupported action fails at load even if no plan reaches it.
    this.compileActions(n.entry, `entry of #${n.id}`);
    this.compileActions(n.exit, `exit of #${n.id}`);
    if (n.type === 'compound') this.compileActions(n.initial.actions, `initial of #${n.id}`);
  }

  private compileTransition(t: XTransition): Transition {
    let c = this.trans.get(t);
    if (c) return c;
    for (const target of t.target ?? []) if (target.type === 'history') this.refuse(`a transition to a history state (#${target.id})`);
    c = { id: this.trans.size, def: t, guard: this.compileGuard(t.guard, `#${t.source.id} on '${t.eventType ?? 'always'}'`), ops: this.compileActions(t.actions, `#${t.source.id} on '${t.eventType}'`), one: [], lastCfg: null, lastPlan: null };
    c.one.push(c);
    this.trans.set(t, c);
    return c;
  }

  private compileGuard(g: unknown, where: string): Guard {
    if (g === undefined) return null;
    if (typeof g === 'function') {
      if ('check' in g) this.refuse(`the built-in guard '${String((g as { type?: unknown }).type)}' (${where})`);
      return { impl: g as Fn, params: { p: undefined, fn: false }, inline: true };
    }
    const name = typeof g === 'string' ? g : (g as { type: string }).type;
    const impl = (this.machine.implementations.guards as Record<string, unknown>)[name];
    if (impl === undefined) this.refuse(`the guard '${name}', which is not implemented (${where})`);
    if (typeof impl !== 'function') this.refuse(`the guard alias '${name}' (${where})`);
    if ('check' in impl) this.refuse(`the built-in guard '${name}' (stateIn/and/or/not) (${where})`);
    const p = typeof g === 'object' && g !== null && 'params' in g ? (g as { params: unknown }).params : undefined;
    return { impl: impl as Fn, params: { p, fn: typeof p === 'function' }, inline: false };
  }

  private compileActions(actions: readonly unknown[], where: string): Op[] {
    return actions.map((a) => this.compileAction(a, where));
  }

  private compileAction(a: unknown, where: string): Op {
    let name: string;
    let impl: unknown;
    let p: unknown = undefined;
    if (typeof a === 'string') {
      name = a;
      impl = (this.machine.implementations.actions as Record<string, unknown>)[a];
    } else if (typeof a === 'function') {
      impl = a;
      name = isBuiltin(a) ? a.type : a.name || '(anonymous)';
    } else if (typeof a === 'object' && a !== null && typeof (a as { type?: unknown }).type === 'string') {
      name = (a as { type: string }).type;
      impl = (this.machine.implementations.actions as Record<string, unknown>)[name];
      if ('params' in a) p = (a as { params: unknown }).params;
    } else return this.refuse(`an action of unknown shape (${where})`);
    const params: ParamSource = { p, fn: typeof p === 'function' };
    if (!isBuiltin(impl)) return op({ k: 'effect', type: name, params });
    const b = impl as unknown as Record<string, unknown> & { type: string };
    switch (b.type) {
      case 'xstate.assign':
        return op({ k: 'assign', assignment: b.assignment, params, keys: typeof b.assignment === 'function' ? null : Object.keys(b.assignment as object) });
      case 'xstate.raise': {
        if (b.delay === undefined) return this.refuse(`an immediate raise (${where})`);
        if (typeof b.event === 'string') return this.refuse(`raise of a string event (${where})`);
        if (typeof b.id !== 'string') return this.refuse(`a delayed raise without an id (${where})`);
        let delay: number | Fn;
        if (typeof b.delay === 'string') {
          const d = (this.machine.implementations.delays as Record<string, unknown>)[b.delay];
          if (typeof d === 'number') delay = d;
          else if (typeof d === 'function') delay = d as Fn;
          else return this.refuse(`the delay '${b.delay}', which is not provided (${where})`);
        } else if (typeof b.delay === 'number' || typeof b.delay === 'function') delay = b.delay as number | Fn;
        else return this.refuse(`a delay of unknown shape (${where})`);
        return op({ k: 'arm', id: b.id, event: b.event, delay, params });
      }
      case 'xstate.cancel':
        return op({ k: 'cancel', id: b.sendId, params });
      default:
        return this.refuse(`the action '${b.type}' (${where})`);
    }
  }

  /** Build ahead of time every plan the structure allows (guards ignored), up to a bound. */
  private enumerate(max: number): number {
    let built = 0;
    const eventTypes = new Set<string>();
    for (const n of this.nodeList) for (const d of n.transitions.keys()) eventTypes.add(d);
    const queue: Config[] = [this.initialCfg];
    const seen = new Set<Config>(queue);
    for (let qi = 0; qi < queue.length && built < max; qi++) {
      const cfg = queue[qi]!;
      if (cfg.final) continue;
      const options: Transition[][] = [];
      for (const ev of eventTypes) {
        const sel = this.selector(cfg, ev);
        if (sel) options.push(...selections<Transition, Selector>(sel));
      }
      options.push(...eventlessOptions(cfg));
      for (const ts of options) {
        if (ts.length === 0) continue;
        const plan = this.planFor(cfg, ts);
        built++;
        if (!seen.has(plan.next)) (seen.add(plan.next), queue.push(plan.next));
      }
    }
    return built;
  }

  // ---------------------------------------------------------------- configurations

  /** The configuration of exactly these nodes in this order (xstate's `_nodes` order decides value key order). */
  private configFor(given: XNode[]): Config {
    const key = given.map((n) => n.id).join('|');
    let cfg = this.configs.get(key);
    if (cfg) return cfg;
    // The configuration's own node list (never an array of xstate's), carrying its Config: configOf
    // reads it back with one property load instead of a WeakMap lookup (about three per step).
    const nodes = given.slice();
    const set = new Set(nodes);
    const root = this.machine.root as unknown as XNode;
    const eventless: Transition[][][] = [];
    for (const n of nodes) {
      if (n.type !== 'atomic' && n.type !== 'final') continue;
      const chain: Transition[][] = [];
      for (let s: XNode | undefined = n; s; s = s.parent) if (s.always) chain.push(s.always.map((t) => this.compileTransition(t)));
      eventless.push(chain);
    }
    const value = stateValue(root, nodes);
    cfg = {
      machine: this,
      index: this.configs.size,
      nodes,
      key,
      value,
      valueKey: internalized(typeof value === 'string' ? value : JSON.stringify(value)),
      tags: new Set(nodes.flatMap((n) => n.tags)),
      final: isInFinalState(set, root),
      selectors: new Map(),
      selTypes: [],
      selSels: [],
      eventless,
      hasEventless: eventless.some((chain) => chain.length > 0),
      plans: new Map(),
      planByTransition: new Map(),
      matchCache: new Map(),
      gen: undefined,
      acceptedList: null,
      acceptedBits: 0,
    };
    this.configs.set(key, cfg);
    Object.defineProperty(nodes, CONFIG, { value: cfg });
    this.byNodes.set(given, cfg);
    return cfg;
  }

  /** The configuration of a snapshot (one of ours: from its node list; xstate's: by its nodes, once). */
  configOf(snap: Snap): Config {
    const nodes = (snap as unknown as { _nodes: XNode[] & { [CONFIG]?: Config } })._nodes;
    const own = nodes[CONFIG];
    // Another machine's configuration would be a compiler bug; the owner check costs one comparison.
    if (own !== undefined && own.machine === this) return own;
    let cfg = this.byNodes.get(nodes);
    if (!cfg) {
      cfg = this.configFor(nodes);
      this.byNodes.set(nodes, cfg);
    }
    return cfg;
  }

  private selector(cfg: Config, eventType: string): Selector | null {
    let sel: Selector | null | undefined;
    // A configuration meets a handful of event types: a scan of their names (event types are mostly
    // literals, so === is mostly a pointer comparison) is several times cheaper than a Map lookup,
    // which was the largest single user of hash lookups in the executor.
    const types = cfg.selTypes;
    for (let i = 0; i < types.length; i++) {
      if (types[i] === eventType) {
        sel = cfg.selSels[i]!;
        break;
      }
    }
    if (sel === undefined) {
      sel = cfg.selectors.get(eventType);
      if (sel === undefined) sel = this.buildSelector(cfg, eventType);
      if (types.length < SCANNED_TYPES) {
        types.push(eventType);
        cfg.selSels.push(sel);
      }
    }
    return sel;
  }

  /**
   * The selector, built on first use. Apart from the lookup above: the closures here capture this
   * function's variables, and V8 allocates their context on every call of the function that declares
   * them, early return or not (~100 bytes per lookup when this was one function).
   */
  private buildSelector(cfg: Config, eventType: string): Selector | null {
    let sel: Selector | null;
    const set = new Set(cfg.nodes);
    const children = (n: XNode) => cfg.nodes.filter((c) => c.parent === n);
    const build = (n: XNode): Selector | null => {
      const own = (n.transitions.get(eventType) ?? []).map((t) => this.compileTransition(t));
      // xstate walks the state value: a node whose value has one key is treated as compound.
      const kidsNodes = n.type === 'atomic' || n.type === 'final' ? [] : children(n).filter((c) => set.has(c));
      const kids = kidsNodes.map(build);
      const parallel = kidsNodes.length > 1;
      if (own.length === 0 && kids.every((k) => k === null)) return null;
      const live = kids.filter((k): k is Selector => k !== null);
      return { own, kids: live, parallel, flat: !parallel && live.every((k) => k.flat) };
    };
    sel = build(this.machine.root as unknown as XNode);
    cfg.selectors.set(eventType, sel);
    return sel;
  }

  // ---------------------------------------------------------------- plans (one xstate microstep each)

  private planFor(cfg: Config, ts: Transition[]): Plan {
    if (ts.length === 1) {
      // The common case, without a key string per step (the same Plan object as under its key).
      const t = ts[0]!;
      if (t.lastCfg === cfg) return t.lastPlan!;
      const byOne = cfg.planByTransition.get(t);
      if (byOne !== undefined) {
        t.lastCfg = cfg;
        t.lastPlan = byOne;
        return byOne;
      }
    }
    const key = ts.length === 1 ? String(ts[0]!.id) : ts.map((t) => t.id).join(',');
    let plan = cfg.plans.get(key);
    if (!plan) {
      plan = this.buildPlan(cfg, ts, false);
      cfg.plans.set(key, plan);
    }
    if (ts.length === 1) cfg.planByTransition.set(ts[0]!, plan);
    return plan;
  }

  private buildPlan(cfg: Config, selected: Transition[], isInitial: boolean): Plan {
    const nodeSet = new Set(cfg.nodes);
    const filtered = removeConflictingTransitions(
      selected.map((t) => t.def),
      nodeSet,
    );
    const ops: Op[] = [];
    const mut = new Set(cfg.nodes);
    if (!isInitial) {
      const toExit = computeExitSet(filtered, mut).sort((a, b) => b.order - a.order);
      for (const s of toExit) {
        ops.push(...this.compileActions(s.exit, `exit of #${s.id}`));
        mut.delete(s);
      }
    }
    for (const t of filtered) ops.push(...(this.trans.get(t)?.ops ?? this.compileActions(t.actions, 'transition')));
    // Enter states (xstate's enterStates).
    const statesToEnter = new Set<XNode>();
    const defaultEntry = new Set<XNode>();
    computeEntrySet(filtered, defaultEntry, statesToEnter);
    const root = this.machine.root as unknown as XNode;
    if (isInitial) defaultEntry.add(root);
    const completed = new Set<XNode>();
    let done = false;
    for (const s of [...statesToEnter].sort((a, b) => a.order - b.order)) {
      mut.add(s);
      ops.push(...this.compileActions(s.entry, `entry of #${s.id}`));
      if (defaultEntry.has(s) && s.type === 'compound') ops.push(...this.compileActions(s.initial.actions, `initial of #${s.id}`));
      if (s.type !== 'final') continue;
      const parent = s.parent;
      let marker = parent?.type === 'parallel' ? parent : parent?.parent;
      let completion: XNode = marker ?? s;
      if (parent?.type === 'compound') ops.push(op({ k: 'doneEvent', event: { type: `xstate.done.state.${parent.id}`, output: undefined } }));
      while (marker?.type === 'parallel' && !completed.has(marker) && isInFinalState(mut, marker)) {
        completed.add(marker);
        ops.push(op({ k: 'doneEvent', event: { type: `xstate.done.state.${marker.id}`, output: undefined } }));
        completion = marker;
        marker = marker.parent;
      }
      if (marker) continue;
      done = true;
      ops.push(op({ k: 'machineDone', completionId: completion.id }));
    }
    const nextNodes = [...mut];
    // xstate sorts its node list in place to run every exit action on completion, so a done snapshot keeps
    // its nodes in that (descending) order.
    if (done) for (const s of nextNodes.sort((a, b) => b.order - a.order)) ops.push(...this.compileActions(s.exit, `exit of #${s.id}`));
    const moved = !(nextNodes.length === cfg.nodes.length && cfg.nodes.every((n) => mut.has(n)));
    const next = moved ? this.configFor(nextNodes) : cfg;
    return { ops, next, moved };
  }

  // ---------------------------------------------------------------- generated code

  /** @internal The configuration's generated step, made on its first use (null when generation is off). */
  generatedFor(cfg: Config): Generated | null {
    if (cfg.gen !== undefined) return cfg.gen;
    if (!this.generateOn) return (cfg.gen = null);
    const types = new Set<string>();
    for (const n of cfg.nodes) for (const d of n.transitions.keys()) types.add(d);
    const chains = cfg.eventless.filter((chain) => chain.length > 0);
    const src: GenSource = {
      machineId: this.id,
      cfgIndex: cfg.index,
      eventTypes: [...types],
      selector: (type) => this.selector(cfg, type),
      // Every op carries every field (op() above), so a Plan reads as the generator's structural view of one.
      plan: (ts) => this.planFor(cfg, ts as Transition[]) as unknown as GenPlan,
      eventlessChain: chains.length === 1 ? chains[0]!.flat() : null,
      hasEventless: cfg.hasEventless,
    };
    let g: Generated;
    try {
      g = generate(src, GEN_HELPERS, this.rewriteGenerated);
    } catch (error) {
      // A process that forbids code from strings (--disallow-code-generation-from-strings) interprets the plans.
      if (!(error instanceof EvalError)) throw error;
      this.generateOn = false;
      return (cfg.gen = null);
    }
    this.genStats.configs++;
    for (const f of g.fallbacks) this.genStats.fallbacks.push(`${cfg.valueKey} ${f}`);
    return (cfg.gen = g);
  }

  /** Generate every configuration known now (the compiler enumerates them at load), and say what was covered. */
  generateAll(): GeneratedStats {
    for (const cfg of [...this.configs.values()]) this.generatedFor(cfg);
    return this.generated;
  }

  private generateInitial(): GeneratedOps | null {
    try {
      return generateOps(this.id, this.initialOps as unknown as GenOp[], GEN_HELPERS, this.rewriteGenerated);
    } catch (error) {
      if (!(error instanceof EvalError)) throw error;
      this.generateOn = false;
      return null;
    }
  }

  /** What generation covered so far (configurations are generated on their first step). */
  get generated(): GeneratedStats {
    return { configs: this.genStats.configs, fallbacks: [...this.genStats.fallbacks] };
  }

  // ---------------------------------------------------------------- run time

  /** A snapshot with xstate's fields, sharing the configuration's value, nodes and tags (its methods are on the class's prototype). */
  private snapshot(cfg: Config, context: unknown, status: string, output: unknown, error?: unknown): Snap {
    return new this.Snapshot(status, output, error, this.machine, context, cfg.nodes, cfg.value, cfg.tags, this.children, this.history);
  }

  initial(input: unknown): Step {
    return this.start(input, false);
  }

  /**
   * `initial`, for a host that steps in place: the snapshot comes with a context object of its own (what
   * `own(initial(input).snap)` gives, without a second snapshot and a second copy of the context).
   */
  initialOwned(input: unknown): Step {
    return this.start(input, true);
  }

  private start(input: unknown, owned: boolean): Step {
    const initEvent = { type: 'xstate.init', input } as EventObject;
    const ctxDef = this.machine.config.context as unknown;
    let ctx: unknown;
    try {
      ctx = typeof ctxDef === 'function' ? this.cloneContext((ctxDef as Fn)({ input, self: this.self, spawn: noSpawn } as never) as object) : (ctxDef ?? {});
    } catch (error) {
      return { snap: this.snapshot(this.configFor([this.machine.root as unknown as XNode]), {}, 'error', undefined, error), effects: EMPTY_EFFECTS, timers: EMPTY_TIMERS };
    }
    if (!this.mergeMade && typeof ctx === 'object' && ctx !== null) {
      this.merge = merger(Object.keys(ctx));
      this.mergeMade = true;
    }
    // A context made by the machine's context function (spread above) is new: assigns may write into it.
    // A static context is the machine's own object and is copied on the first assign, or below.
    const run = this.takeRun(this.initialCfg, ctx, true, typeof ctxDef === 'function');
    try {
      if (this.initialGen === undefined) this.initialGen = this.generateOn ? this.generateInitial() : null;
      if (this.initialGen === null) run.exec(this.initialOps, initEvent);
      else this.initialGen(run, initEvent);
      run.macro(initEvent, true);
      if (owned) {
        run.ownContext();
        this.ownValuesOf(run.ctx as Record<string, unknown>);
      }
      return run.result(null);
    } finally {
      run.busy = false;
    }
  }

  step(snap: Snap, event: EventObject): Step {
    if (snap.status !== 'active') return { snap, effects: EMPTY_EFFECTS, timers: EMPTY_TIMERS };
    const run = this.takeRun(this.configOf(snap), snap.context, false);
    try {
      run.macro(event, false);
      return run.result(snap);
    } finally {
      run.busy = false;
    }
  }

  /**
   * The step, written into `snap` itself: its context is updated in place and its configuration fields
   * replaced, no new snapshot or context object is made. Only for a host that owns its snapshots and
   * keeps no old one (the executor's PureHost with `inPlace`); the explorer and every tool that compares
   * snapshots use `step`. The snapshot must come from `own()` (its context is its own). The effects and
   * timer operations are the same as `step`'s (test/step checks both against xstate). The result is
   * read before this machine's next step: that step may reuse the object (its lists stay the caller's).
   */
  stepInPlace(snap: Snap, event: EventObject): InPlaceStep {
    if (snap.status !== 'active') return UNCHANGED;
    const run = this.takeRun(this.configOf(snap), snap.context, false, true);
    try {
      run.macro(event, false);
      return run.writeInto(snap);
    } finally {
      run.busy = false;
    }
  }

  /**
   * The keys of this machine's context that held a value with an owned form, found the first time a
   * context became a host's own; null before. Request machines have none, and a search of every key cost
   * each of their starts (seven per request) about 400 instructions. A value that has an owned form under
   * a key not listed stays persistent, which is correct, only slower.
   */
  private ownKeys: string[] | null = null;

  /**
   * A context that a host now owns gets the owned form of each value that has one (machines/common.ts's
   * OWN, a persistent table's mutable twin): the steps in place that follow update it instead of copying.
   * Only the top level: the machines keep such values there.
   */
  private ownValuesOf<C extends Record<string, unknown>>(ctx: C): C {
    let keys = this.ownKeys;
    if (keys === null) {
      keys = this.ownKeys = [];
      for (const k in ctx) if (ownable(ctx[k])) keys.push(k);
    }
    for (let i = 0; i < keys.length; i++) {
      const v = ctx[keys[i]!];
      if (ownable(v)) (ctx as Record<string, unknown>)[keys[i]!] = v[OWN]();
    }
    return ctx;
  }

  /** A snapshot this host may step in place: the same state, with a context object of its own. */
  own(snap: Snap): Snap {
    return this.snapshot(this.configOf(snap), this.ownValuesOf({ ...(snap.context as Record<string, unknown>) }), snap.status, snap.output);
  }

  /**
   * One Run object is reused step after step (a nested step, if any, gets a fresh one, not kept), and
   * replaced by a new one every RUN_RENEWAL steps. A Run kept for good is promoted to V8's old generation
   * after two scavenges, and from then on every store of a young object into it (each step's context, its
   * lists of effects and timers) took V8's write barrier stub, about 50 instructions. Renewed this often,
   * it dies young. It stays in `spare` while in use (`busy` says so): putting a young Run back into this
   * long-lived object after each step was itself a barrier per step.
   */
  private spare: Run | null = null;
  private runsTaken = 0;
  private takeRun(cfg: Config, ctx: unknown, initial: boolean, ownCtx = false): Run {
    let r = this.spare;
    if (r !== null && r.busy) r = new Run(this);
    else if (r === null || (++this.runsTaken & (RUN_RENEWAL - 1)) === 0) this.spare = r = new Run(this);
    r.busy = true;
    r.reset(cfg, ctx, initial, ownCtx);
    return r;
  }

  /**
   * Whether an event of this type can change the snapshot: some state of its configuration has a
   * transition for it (the compiler refuses wildcards), or there are eventless transitions whose guards
   * may read the event. False means the step would return the snapshot unchanged, with no effects.
   */
  accepts(snap: Snap, eventType: string): boolean {
    if (snap.status !== 'active') return false;
    const cfg = this.configOf(snap);
    return cfg.hasEventless || this.selector(cfg, eventType) !== null;
  }

  /**
   * `accepts` for each of a list of events at once, as bits (bit i: `events[i]`'s type), computed once per
   * configuration and list: an owner that offers an actor a fixed list of events (the executor's loop)
   * skips those its configuration has no transition for without asking per event. At most 31 events.
   */
  acceptedOf(snap: Snap, events: readonly EventObject[]): number {
    if (snap.status !== 'active') return 0;
    const cfg = this.configOf(snap);
    if (cfg.acceptedList === events) return cfg.acceptedBits;
    if (events.length > 31) throw new Error(`acceptedOf: ${events.length} events, at most 31`);
    let bits = 0;
    for (let i = 0; i < events.length; i++) if (cfg.hasEventless || this.selector(cfg, events[i]!.type) !== null) bits |= 1 << i;
    cfg.acceptedList = events;
    cfg.acceptedBits = bits;
    return bits;
  }

  /**
   * Whether this event would take a transition now: `accepts`, with the candidate transitions' guards
   * evaluated on the snapshot's context (xstate's guards are pure, so the step that follows on the same
   * snapshot selects the same). False means `step` would return the snapshot unchanged with no effects and
   * no timers; the executor's loop then skips the step (a status poll before the status changed). A
   * configuration with eventless transitions, and an error event, always count as taken.
   */
  takes(snap: Snap, event: EventObject): boolean {
    if (snap.status !== 'active') return false;
    const cfg = this.configOf(snap);
    if (cfg.hasEventless) return true;
    // The step's own selection (macro's first move), without the step.
    const g = cfg.gen === undefined ? this.generatedFor(cfg) : cfg.gen;
    const some = g === null ? this.select(cfg, event, snap.context).length > 0 : g.takes(snap.context, event);
    return some || event.type.startsWith('xstate.error.');
  }

  /** Whether the snapshot's configuration matches a state value (xstate `matches`), answered once per configuration. */
  matches(snap: Snap, query: string | Record<string, unknown>): boolean {
    const cfg = this.configOf(snap);
    const key = typeof query === 'string' ? query : queryKey(query);
    let m = cfg.matchCache.get(key);
    if (m === undefined) {
      m = snap.matches(query as never);
      cfg.matchCache.set(key, m);
    }
    return m;
  }

  /** @internal used by Run */
  select(cfg: Config, event: EventObject, ctx: unknown): Transition[] {
    const sel = this.selector(cfg, event.type);
    if (sel === null) return NONE;
    if (sel.flat) {
      // No parallel region on the way: the deepest enabled transition, without a new array.
      const t = firstEnabled(sel, ctx, event);
      return t === null ? NONE : t.one;
    }
    // Parallel regions: usually one of them has a transition for the event; a list only for two or more.
    const found = collectSelected(sel, ctx, event);
    return found === null ? NONE : found;
  }

  /** @internal */
  eventlessOf(cfg: Config, ctx: unknown, event: EventObject): Transition[] {
    // Most configurations have none: answered from the flag, without walking the per-node chains.
    if (!cfg.hasEventless) return NONE;
    let out: Transition[] | null = null;
    for (const chain of cfg.eventless) {
      loop: for (const always of chain) {
        for (const t of always) {
          if (t.guard === null || checkGuard(t.guard, ctx, event)) {
            if (out === null) out = t.one;
            else if (!out.includes(t)) {
              // Never grow a transition's shared one-element array: copy it first.
              if (out === out[0]!.one) out = [out[0]!];
              out.push(t);
            }
            break loop;
          }
        }
      }
    }
    return out ?? NONE;
  }

  /** @internal */
  plan(cfg: Config, ts: Transition[]): Plan {
    return this.planFor(cfg, ts);
  }

  /** @internal */
  makeSnapshot(cfg: Config, ctx: unknown, status: string, output: unknown): Snap {
    return this.snapshot(cfg, ctx, status, output);
  }

  /** @internal the scope arguments actions get. */
  get actorSelf() {
    return this.self;
  }

  /** Every plan built so far (for the canary test, which corrupts one on purpose). */
  *allPlans(): Iterable<{ config: Config; key: string; plan: Plan }> {
    for (const cfg of this.configs.values()) for (const [key, plan] of cfg.plans) yield { config: cfg, key, plan };
  }

  get configurationCount(): number {
    return this.configs.size;
  }
}

const NONE: Transition[] = [];

const ownable = (v: unknown): v is Ownable => typeof v === 'object' && v !== null && OWN in v;

const objectAssign = (ctx: object, partial: object): void => void Object.assign(ctx, partial);

/**
 * `Object.assign(ctx, partial)` for a partial that is a plain object (what an assign function returns),
 * with a named store for each of these context keys and the general keyed store for any other key.
 * Object.assign took V8's generic path, property by property through the lookup machinery (about 400
 * instructions a call, 26 calls per request in the bench); a for-in over an object literal reads its
 * keys from the map's enum cache, and a switch on an internalized key compares pointers. A partial's
 * inherited enumerable or symbol keys would differ from Object.assign: assign functions return literals,
 * and the compiled step is checked against xstate's on every explored edge.
 */
function merger(keys: readonly string[]): (ctx: object, partial: object) => void {
  const cases = keys.map((k) => `case ${JSON.stringify(k)}: c[${JSON.stringify(k)}] = p[${JSON.stringify(k)}]; break;`).join(' ');
  try {
    // A source of its own (the counter), as with cloner: the feedback of a function made from a cached
    // source is shared, and a merge site's for-in should see only its own partials' shapes.
    return new Function('c', 'p', `for (const k in p) switch (k) { ${cases} default: c[k] = p[k]; } // ${mergers++}`) as (ctx: object, partial: object) => void;
  } catch (error) {
    if (!(error instanceof EvalError)) throw error;
    return objectAssign;
  }
}

let mergers = 0;

/**
 * A function-form assign's merge at one site of the generated code: made at the site's first call for
 * the keys of the context it meets. One merge per machine met every assign's partial, a different
 * shape at each call; a site's partials have one or two. (Measured: about 1,600 fewer JS-thread
 * instructions per request in the bench.)
 */
function mergeSite(): MergeSite {
  const site: MergeSite = {
    m: (ctx, partial) => {
      site.m = merger(Object.keys(ctx));
      site.m(ctx, partial);
    },
  };
  return site;
}

/** A function `o => ({ ...o })` with a call site of its own (see CompiledMachine.cloneContext). */
let cloners = 0;
function cloner(): (o: object) => object {
  try {
    // A source of its own (the counter): V8 caches compiled code from strings by source, and one cached
    // function shared between machines would share its clone cache too.
    return new Function('o', `return { ...o }; // ${cloners++}`) as (o: object) => object;
  } catch (error) {
    // Code from strings is forbidden (--disallow-code-generation-from-strings): the shared site.
    if (!(error instanceof EvalError)) throw error;
    return (o) => ({ ...o });
  }
}

/**
 * What stepInPlace returns: whether the snapshot changed, and the step's effects and timer operations
 * (the machine's reused Run for a step that did something, valid until the machine's next step; a
 * shared frozen object for a step that did nothing).
 */
export interface InPlaceStep {
  readonly changed: boolean;
  readonly effects: readonly Effect[];
  readonly timers: readonly TimerOp[];
}
const UNCHANGED: InPlaceStep = Object.freeze({ changed: false, effects: EMPTY_EFFECTS, timers: EMPTY_TIMERS });
const noSpawn = () => {
  throw new Error('spawn is not supported by the compiled stepper');
};

function inertScopeFor(self: ReturnType<typeof createEmptyActor>) {
  return { self, defer: () => {}, id: '', logger: () => {}, sessionId: '', stopChild: () => {}, system: self.system, emit: () => {}, actionExecutor: () => {} };
}

/**
 * The `{ context, event }` argument of guards and params functions: a new object per call. A module-wide
 * object refilled per call made no garbage, but it lives in V8's old generation, and each store of a
 * young context or event into it took the slow write barrier (a call into the remembered set); a small
 * object that dies young costs less than those two stores.
 */
function scopeOf(ctx: unknown, event: EventObject): { context: unknown; event: EventObject } {
  return { context: ctx, event };
}

/** What generated code shares with the interpreter: the same empty lists and params. */
const GEN_HELPERS: GenHelpers = { noParams: NO_PARAMS, emptyEffects: EMPTY_EFFECTS, emptyTimers: EMPTY_TIMERS, mergeSite };

function resolveParams(src: ParamSource, ctx: unknown, event: EventObject): unknown {
  return src.fn ? (src.p as Fn)(scopeOf(ctx, event) as never) : src.p;
}

function checkGuard(g: NonNullable<Guard>, ctx: unknown, event: EventObject): boolean {
  const params = g.inline ? undefined : resolveParams(g.params, ctx, event);
  return Boolean(g.impl(scopeOf(ctx, event) as never, params as never));
}

/** evalSelector for a flat selector: the innermost state's enabled transition first, as xstate picks it. */
function firstEnabled(sel: Selector, ctx: unknown, event: EventObject): Transition | null {
  if (sel.kids.length === 1) {
    const t = firstEnabled(sel.kids[0]!, ctx, event);
    if (t !== null) return t;
  }
  for (const t of sel.own) if (t.guard === null || checkGuard(t.guard, ctx, event)) return t;
  return null;
}

/**
 * evalSelector without a list for the common outcome: the transitions found go to `selected` — null for
 * none, a transition's shared `one` for exactly one, a list of its own only from the second on (the
 * shared one-element list is never grown). Guards are pure, so no selection runs inside another.
 */
let selected: Transition[] | null = null;
function collectSelected(sel: Selector, ctx: unknown, event: EventObject): Transition[] | null {
  selected = null;
  collect(sel, ctx, event);
  const out = selected;
  selected = null;
  return out;
}
function collect(sel: Selector, ctx: unknown, event: EventObject): boolean {
  if (sel.parallel) {
    let any = false;
    for (const k of sel.kids) if (collect(k, ctx, event)) any = true;
    if (any) return true;
  } else if (sel.kids.length === 1 && collect(sel.kids[0]!, ctx, event)) return true;
  for (const t of sel.own) {
    if (t.guard === null || checkGuard(t.guard, ctx, event)) {
      if (selected === null) selected = t.one;
      else {
        if (selected === selected[0]!.one) selected = [selected[0]!];
        selected.push(t);
      }
      return true;
    }
  }
  return false;
}

/**
 * One macrostep in progress: the configuration, context (copied on first assign), status and collected
 * output. Generated code (generate.ts) reads and writes the fields it shares with `exec`: cfg, ctx,
 * version, effects, timers, queue, assignConsts.
 */
class Run implements InPlaceStep {
  /** In a step now (takeRun: a nested step takes a fresh Run). */
  busy = false;
  /** Whether the step changed the snapshot (stepInPlace hands the Run back as its result: see writeInto). */
  changed = false;
  private ownCtx = false;
  status = 'active';
  output: unknown = undefined;
  effects: Effect[] = EMPTY_EFFECTS;
  timers: TimerOp[] = EMPTY_TIMERS;
  readonly queue: EventObject[] = [];
  /** Bumped whenever xstate would produce a new snapshot object. */
  version = 0;
  cfg!: Config;
  ctx: unknown;

  /** The assign arguments' constant members (each assign gets its own object with `context` and `event` beside them). */
  readonly assignConsts: { spawn: typeof noSpawn; self: unknown; system: unknown };

  constructor(private readonly cm: CompiledMachine) {
    this.assignConsts = { spawn: noSpawn, self: cm.actorSelf, system: cm.actorSelf.system };
  }

  /** Scratch for the values of an object-form assign (one run computes one assign at a time). */
  private readonly vals: unknown[] = [undefined];

  /** A function-form assign's partial into the context (which is the run's own by now). */
  merge(partial: object): void {
    this.cm.merge(this.ctx as object, partial);
  }

  /** Make the context the run's own object unless it already is (before an assign writes it, or for a snapshot stepped in place). */
  ownContext(): void {
    if (this.ownCtx) return;
    this.ctx = this.cm.cloneContext(this.ctx as object);
    this.ownCtx = true;
  }

  reset(cfg: Config, ctx: unknown, initial: boolean, ownCtx: boolean): void {
    this.cfg = cfg;
    this.ctx = ctx;
    this.changed = initial;
    this.ownCtx = ownCtx;
    this.status = 'active';
    this.output = undefined;
    this.effects = EMPTY_EFFECTS;
    this.timers = EMPTY_TIMERS;
    // What a run that finished left queued (its done events: 3 runs per request in the bench). Popped:
    // setting an array's length is a store through an accessor, a runtime call of about 440 instructions.
    const q = this.queue;
    while (q.length !== 0) q.pop();
    this.version = 0;
  }

  exec(ops: Op[], event: EventObject): void {
    for (const op of ops) {
      switch (op.k) {
        case 'effect': {
          const p = resolveParams(op.params, this.ctx, event);
          const e: Effect = { type: op.type, params: (p ?? NO_PARAMS) as Record<string, unknown> };
          this.effects = appended(this.effects, e);
          break;
        }
        case 'assign': {
          const params = resolveParams(op.params, this.ctx, event);
          // A new arguments object per assign (see scopeOf): the run's constant members copied from its own.
          const a0 = this.assignConsts;
          const args = { context: this.ctx, event, spawn: a0.spawn, self: a0.self, system: a0.system };
          if (typeof op.assignment === 'function') {
            const partial = (op.assignment as Fn)(args as never, params as never);
            this.ownContext();
            this.merge(partial as object);
          } else {
            // xstate's object form: every property computed from the context as it was, then all written.
            // The keys were listed at compile time; the values wait in the run's scratch list, not in a new object.
            const a = op.assignment as Record<string, unknown>;
            const keys = op.keys!;
            const vals = this.vals;
            for (let i = 0; i < keys.length; i++) {
              const v = a[keys[i]!];
              vals[i] = typeof v === 'function' ? (v as Fn)(args as never, params as never) : v;
            }
            this.ownContext();
            const c = this.ctx as Record<string, unknown>;
            for (let i = 0; i < keys.length; i++) {
              c[keys[i]!] = vals[i];
              vals[i] = undefined;
            }
          }
          this.version++;
          break;
        }
        case 'arm': {
          const params = resolveParams(op.params, this.ctx, event);
          // The arguments object only for an event or delay computed by a function (the executor's delays are numbers).
          const computed = typeof op.event === 'function' || typeof op.delay === 'function';
          const args = computed ? { context: this.ctx, event, self: this.cm.actorSelf, system: this.cm.actorSelf.system } : null;
          const ev = typeof op.event === 'function' ? (op.event as Fn)(args as never, params as never) : op.event;
          const delay = typeof op.delay === 'function' ? op.delay(args as never, params as never) : op.delay;
          if (typeof delay !== 'number') throw new Error(`compiled stepper: delay of timer '${op.id}' did not resolve to a number`);
          const t: TimerOp = { op: 'arm', id: op.id, event: ev as EventObject, delay };
          this.timers = appended(this.timers, t);
          break;
        }
        case 'cancel': {
          const params = resolveParams(op.params, this.ctx, event);
          const id = typeof op.id === 'function' ? (op.id as Fn)({ context: this.ctx, event, self: this.cm.actorSelf } as never, params as never) : op.id;
          const t: TimerOp = { op: 'cancel', id: id as string };
          this.timers = appended(this.timers, t);
          break;
        }
        case 'doneEvent':
          this.queue.push(op.event);
          break;
        case 'machineDone':
          this.machineDone(op.completionId);
          break;
      }
    }
  }

  /** The machine reached its top-level final state: status done, output computed from the context now. */
  machineDone(completionId: string): void {
    this.status = 'done';
    const rootOutput = (this.cm.machine.root as unknown as XNode).output;
    if (rootOutput !== undefined) {
      const doneEvent = { type: `xstate.done.state.${completionId}`, output: undefined };
      this.output = typeof rootOutput === 'function' ? (rootOutput as Fn)({ context: this.ctx, event: doneEvent, self: this.cm.actorSelf } as never) : rootOutput;
    }
    this.version++;
  }

  /** The event's microstep from the current configuration: generated code, or the plans interpreted. True when a transition was selected. */
  private microFor(ev: EventObject): boolean {
    const cfg = this.cfg;
    const g = cfg.gen === undefined ? this.cm.generatedFor(cfg) : cfg.gen;
    return g === null ? this.microInterpreted(ev) : g.micro(this, ev);
  }

  /** The interpreter's microstep (also what generated code falls back to for a selection it does not generate). */
  microInterpreted(ev: EventObject): boolean {
    const ts = this.cm.select(this.cfg, ev, this.ctx);
    this.micro(ts, ev);
    return ts.length > 0;
  }

  /** The eventless microstep, if an eventless transition is enabled (only called for configurations that have some). */
  private alwaysFor(ev: EventObject): boolean {
    const cfg = this.cfg;
    const g = cfg.gen === undefined ? this.cm.generatedFor(cfg) : cfg.gen;
    if (g !== null && g.always !== null) return g.always(this, ev);
    const ts = this.cm.eventlessOf(cfg, this.ctx, ev);
    if (ts.length === 0) return false;
    this.micro(ts, ev);
    return true;
  }

  private micro(ts: Transition[], event: EventObject): void {
    if (ts.length === 0) return;
    const plan = this.cm.plan(this.cfg, ts);
    this.exec(plan.ops, event);
    if (plan.moved) {
      this.cfg = plan.next;
      this.version++;
    }
  }

  /** xstate's macrostep: the event's microstep, then eventless transitions and internal (done) events until stable. */
  macro(event: EventObject, initial: boolean): void {
    const start = this.version;
    if (!initial && !this.microFor(event) && event.type.startsWith('xstate.error.')) {
      // (Nothing was selected, so the microstep changed nothing before this.)
      this.status = 'error';
      this.version++;
      this.changed = true;
      return;
    }
    let next = event;
    let eventless = true;
    while (this.status === 'active') {
      // `before`: the version before an eventless microstep (-1 when the step came from the queue instead).
      let before = -1;
      if (eventless && this.cfg.hasEventless) {
        before = this.version;
        if (!this.alwaysFor(next)) before = -1;
      }
      if (before === -1) {
        if (this.queue.length === 0) break;
        next = this.queue.shift()!;
        this.microFor(next);
      }
      eventless = this.version !== before;
    }
    if (this.version !== start) this.changed = true;
  }

  /** stepInPlace's result: the new configuration, context, status and output written into `snap`. */
  writeInto(snap: Snap): InPlaceStep {
    if (!this.changed && this.effects === EMPTY_EFFECTS && this.timers === EMPTY_TIMERS) return UNCHANGED;
    // The Run itself is the result: its changed, effects and timers are the step's. A result object per
    // step was about 1.5 KB per request in the burst bench (sampling heap profiler). A Run is young (takeRun
    // replaces it every RUN_RENEWAL steps), so its fields take no slow write barrier, which an old result
    // object refilled per step did. Its lists are new per step, so a caller may keep them.
    if (!this.changed) return this;
    const s = snap as unknown as { _nodes: unknown; value: unknown; tags: unknown; context: unknown; status: string; output: unknown };
    s._nodes = this.cfg.nodes;
    s.value = this.cfg.value;
    s.tags = this.cfg.tags;
    s.context = this.ctx;
    s.status = this.status;
    s.output = this.output;
    return this;
  }

  result(prev: Snap | null): Step {
    const snap = !this.changed && prev ? prev : this.cm.makeSnapshot(this.cfg, this.ctx, this.status, this.output);
    return { snap, effects: this.effects, timers: this.timers };
  }
}

// ---------------------------------------------------------------- structure (ports of xstate's stateUtils, no history)

function properAncestors(n: XNode, to: XNode | undefined): XNode[] {
  const out: XNode[] = [];
  if (to === n) return out;
  for (let m = n.parent; m && m !== to; m = m.parent) out.push(m);
  return out;
}

function isDescendant(child: XNode, parent: XNode | undefined): boolean {
  let m = child;
  while (m.parent && m.parent !== parent) m = m.parent;
  return m.parent === parent;
}

function childrenOf(n: XNode): XNode[] {
  return Object.values(n.states).filter((c) => c.type !== 'history');
}

function isInFinalState(set: Set<XNode>, n: XNode): boolean {
  if (n.type === 'compound') return childrenOf(n).some((c) => c.type === 'final' && set.has(c));
  if (n.type === 'parallel') return childrenOf(n).every((c) => isInFinalState(set, c));
  return n.type === 'final';
}

function initialStateNodes(n: XNode): Set<XNode> {
  const set = new Set<XNode>();
  const iter = (d: XNode) => {
    if (set.has(d)) return;
    set.add(d);
    if (d.type === 'compound') iter(d.initial.target[0]!);
    else if (d.type === 'parallel') for (const c of childrenOf(d)) iter(c);
  };
  iter(n);
  return set;
}

function lca(nodes: XNode[]): XNode | undefined {
  const [head, ...tail] = nodes;
  for (const anc of properAncestors(head!, undefined)) if (tail.every((n) => isDescendant(n, anc))) return anc;
  return undefined;
}

function transitionDomain(t: XTransition): XNode | undefined {
  const targets = t.target ?? [];
  if (!t.reenter && targets.every((x) => x === t.source || isDescendant(x, t.source))) return t.source;
  const l = lca([...targets, t.source]);
  if (l) return l;
  if (t.reenter) return undefined;
  let root = t.source;
  while (root.parent) root = root.parent;
  return root;
}

function computeExitSet(ts: XTransition[], set: Set<XNode>): XNode[] {
  const out = new Set<XNode>();
  for (const t of ts) {
    if (!t.target?.length) continue;
    const domain = transitionDomain(t);
    if (t.reenter && t.source === domain) out.add(domain!);
    for (const n of set) if (isDescendant(n, domain)) out.add(n);
  }
  return [...out];
}

function removeConflictingTransitions(ts: XTransition[], set: Set<XNode>): XTransition[] {
  const filtered = new Set<XTransition>();
  for (const t1 of ts) {
    let preempted = false;
    const remove = new Set<XTransition>();
    for (const t2 of filtered) {
      const e1 = new Set(computeExitSet([t1], set));
      if (computeExitSet([t2], set).some((n) => e1.has(n))) {
        if (isDescendant(t1.source, t2.source)) remove.add(t2);
        else {
          preempted = true;
          break;
        }
      }
    }
    if (!preempted) {
      for (const t3 of remove) filtered.delete(t3);
      filtered.add(t1);
    }
  }
  return [...filtered];
}

function computeEntrySet(ts: XTransition[], defaultEntry: Set<XNode>, toEnter: Set<XNode>): void {
  for (const t of ts) {
    const domain = transitionDomain(t);
    for (const s of t.target ?? []) {
      if (t.source !== s || t.source !== domain || t.reenter) {
        toEnter.add(s);
        defaultEntry.add(s);
      }
      addDescendants(s, defaultEntry, toEnter);
    }
    for (const s of t.target ?? []) {
      const ancestors = properAncestors(s, domain);
      if (domain?.type === 'parallel') ancestors.push(domain);
      addAncestors(toEnter, defaultEntry, ancestors, !t.source.parent && t.reenter ? undefined : domain);
    }
  }
}

function addDescendants(n: XNode, defaultEntry: Set<XNode>, toEnter: Set<XNode>): void {
  if (n.type === 'compound') {
    const initial = n.initial.target[0]!;
    toEnter.add(initial);
    defaultEntry.add(initial);
    addDescendants(initial, defaultEntry, toEnter);
    addAncestors(toEnter, defaultEntry, properAncestors(initial, n), undefined);
  } else if (n.type === 'parallel') {
    for (const c of childrenOf(n)) {
      if (![...toEnter].some((s) => isDescendant(s, c))) {
        toEnter.add(c);
        defaultEntry.add(c);
        addDescendants(c, defaultEntry, toEnter);
      }
    }
  }
}

function addAncestors(toEnter: Set<XNode>, defaultEntry: Set<XNode>, ancestors: XNode[], reentrancyDomain: XNode | undefined): void {
  for (const anc of ancestors) {
    if (!reentrancyDomain || isDescendant(anc, reentrancyDomain)) toEnter.add(anc);
    if (anc.type === 'parallel') {
      for (const c of childrenOf(anc)) {
        if (![...toEnter].some((s) => isDescendant(s, c))) {
          toEnter.add(c);
          addDescendants(c, defaultEntry, toEnter);
        }
      }
    }
  }
}

/** xstate's getStateValue over nodes in this order (the order decides the key order of parallel values). */
function stateValue(root: XNode, nodes: XNode[]): unknown {
  const adj = new Map<XNode, XNode[]>();
  for (const s of nodes) {
    if (!adj.has(s)) adj.set(s, []);
    if (s.parent) {
      if (!adj.has(s.parent)) adj.set(s.parent, []);
      adj.get(s.parent)!.push(s);
    }
  }
  const fromAdj = (n: XNode): unknown => {
    const kids = adj.get(n);
    if (!kids) return {};
    if (n.type === 'compound') {
      const c = kids[0];
      if (!c) return {};
      if (c.type === 'atomic' || c.type === 'final') return c.key;
    }
    const v: Record<string, unknown> = {};
    for (const c of kids) v[c.key] = fromAdj(c);
    return v;
  };
  return fromAdj(root);
}

function eventlessOptions(cfg: Config): Transition[][] {
  let product: Transition[][] = [[]];
  for (const chain of cfg.eventless) {
    const opts: Transition[][] = [[], ...chain.flat().map((t) => [t])];
    product = product.flatMap((p) => opts.map((o) => (o.length && p.includes(o[0]!) ? p : [...p, ...o])));
  }
  return product.filter((p) => p.length > 0);
}

/** `{ worker: 'receiving' }` → `worker.receiving` (one path); anything else → its JSON. */
function queryKey(q: Record<string, unknown>): string {
  let key = '';
  let v: unknown = q;
  while (typeof v === 'object' && v !== null) {
    const keys = Object.keys(v);
    if (keys.length !== 1) return JSON.stringify(q);
    key += (key ? '.' : '') + keys[0];
    v = (v as Record<string, unknown>)[keys[0]!];
  }
  return typeof v === 'string' ? `${key}.${v}` : JSON.stringify(q);
}

export type { AnyMachineSnapshot };
