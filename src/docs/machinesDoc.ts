import { join } from 'node:path';
import type { AnyStateMachine } from 'xstate';
import type * as TS from 'typescript';
import { REGRESSION_VARIANTS } from '../../machines/index.js';
import { SCENARIOS, VARIANT_PLAN as ONE_SIDED_PLAN } from '../explore/catalog.js';
import { COMPOSED_PLAN } from '../explore/composedCatalog.js';
import { EVENT_SENDERS, PRODUCTION_MACHINES } from './catalog.js';
import type { ProductionMachine } from './catalog.js';
import { actionUses, allNodes, machineModel, namedActions, nodeTransitions, relPath } from './machineModel.js';
import type { TransitionRow } from './machineModel.js';
import { code, codes, table } from './markdown.js';
import { constObjectDocs, setupSectionDocs } from './source.js';

const ms = (n: unknown) => (typeof n === 'number' ? `${n.toLocaleString('en-US')} ms` : String(n));
const target = (targets: string[]) => (targets.length === 0 ? '(stays)' : targets.map(code).join(', '));

/** Which scenarios run a machine (by id), from the explorer's catalog. */
/** One-sided and composed variant plans together (a composed variant names consequence invariants). */
const VARIANT_PLAN: Record<string, { scenarios: string[]; expect: string[] }> = { ...ONE_SIDED_PLAN, ...COMPOSED_PLAN };

export function scenariosRunning(id: string): string[] {
  return Object.entries(SCENARIOS)
    .filter(([, make]) => Object.values(make().machines).some((m) => m.id === id))
    .map(([name]) => name);
}

function renderTransitions(rows: TransitionRow[]): string {
  if (rows.length === 0) return 'not handled';
  return rows.map((t) => `${t.guard ? `[${t.guard}] ` : ''}→ ${t.targets.length ? t.targets.join(', ') : '(stays)'}${t.actions.length ? ` / ${t.actions.join(', ')}` : ''}`).join('; ');
}

export function machineBlock(ts: typeof TS, root: string, pm: ProductionMachine): string {
  const m = pm.machine;
  const model = machineModel(m);
  const delayDocs = constObjectDocs(ts, join(root, 'machines/common.ts'), 'DEFAULT_DELAYS');
  const actionDocs = setupSectionDocs(ts, join(root, pm.file), 'actions');
  const senders = EVENT_SENDERS[m.id];
  if (!senders) throw new Error(`EVENT_SENDERS has no entry for machine ${m.id}`);
  for (const e of model.events) if (!senders[e]) throw new Error(`EVENT_SENDERS.${m.id} does not say who sends ${e}`);
  for (const e of Object.keys(senders)) if (!model.events.includes(e)) throw new Error(`EVENT_SENDERS.${m.id}.${e}: ${m.id} handles no such event`);

  const out: string[] = [];
  out.push(`![${m.id}](diagrams/${m.id}.svg)`, '');
  out.push(`Source: \`${pm.file}\` (machine id \`${m.id}\`${m.root.type === 'parallel' ? ', parallel regions ' + codes(Object.keys(m.root.states)) : ''}).`, '');

  out.push('**States**', '');
  out.push(
    table(
      ['state', 'kind', 'description (`meta.description`)', 'deadlines (`after`)', 'local progress (`meta.localProgress`)'],
      model.states.map((s) => [
        code(s.path),
        s.type + (s.tags.length ? ` (tags: ${s.tags.join(', ')})` : ''),
        s.description ?? '—',
        s.deadlines.length ? s.deadlines.map((d) => `${code(d.delay)} → ${target(d.targets)}`).join('; ') : '—',
        codes(s.localProgress),
      ]),
    ),
    '',
  );

  out.push('**Events**', '');
  out.push(
    table(
      ['event', 'sent by', 'handled in', 'deliberately ignored (`' + m.id + 'Ignores`)'],
      model.events.map((e) => {
        const where = [...new Set(model.transitions.filter((t) => t.event === e).map((t) => t.state || '(root)'))];
        const rule = pm.ignores[e];
        const ignored = !rule ? '—' : rule.where === 'elsewhere' ? `everywhere else: ${rule.why}` : rule.where.length === 0 ? `nowhere: ${rule.why}` : `${codes(rule.where)}: ${rule.why}`;
        return [code(e), senders[e]!, codes(where), ignored];
      }),
    ),
    '',
  );

  out.push('**Transitions** (in definition order; `[guard]`, `/ actions`)', '');
  out.push(
    table(
      ['state', 'on', 'guard', 'target', 'actions'],
      model.transitions.map((t) => [code(t.state || '(root)'), code(t.event), t.guard ?? '—', target(t.targets), codes(t.actions)]),
    ),
    '',
  );

  const uses = actionUses(model);
  const named = namedActions(m);
  const effects = named.filter((a) => a.kind === 'effect');
  const assigns = named.filter((a) => a.kind === 'assign');
  out.push('**Named actions the engine provides** (no-ops in the machine; the engine supplies them with `provide()`)', '');
  out.push(
    table(
      ['action', 'params', 'what it must do (JSDoc)', 'used in'],
      effects.map((a) => {
        const d = actionDocs.get(a.name);
        return [code(a.name), d?.paramsType ? code(d.paramsType) : '—', d?.doc || '—', codes([...(uses.get(a.name) ?? [])], 'not used by this machine')];
      }),
    ),
    '',
  );
  out.push('**Context updates** (built-in `assign` actions, named so a regression variant can replace one)', '');
  out.push(
    table(
      ['action', 'JSDoc', 'used in'],
      assigns.map((a) => [code(a.name), actionDocs.get(a.name)?.doc || '—', codes([...(uses.get(a.name) ?? [])], 'not used by this machine')]),
    ),
    '',
  );

  const delays = Object.entries((m.implementations.delays ?? {}) as Record<string, unknown>);
  out.push('**Deadlines**', '');
  out.push(
    table(
      ['delay', 'default', 'meaning (`DEFAULT_DELAYS`, machines/common.ts)', 'armed in'],
      delays.map(([name, value]) => [
        code(name),
        ms(value),
        delayDocs.get(name)?.doc || '—',
        codes(model.states.filter((s) => s.deadlines.some((d) => d.delay === name)).map((s) => s.path)),
      ]),
    ),
    '',
  );

  const variants = REGRESSION_VARIANTS.filter((v) => v.replaces === m.id);
  out.push(`**Explored in**: ${codes(scenariosRunning(m.id))}.`, '');
  out.push(
    `**Regression variants derived from it**: ${
      variants.length === 0 ? 'none' : variants.map((v) => `${code(v.name)} (${v.bugClass}) must break ${(VARIANT_PLAN[v.name]?.expect ?? []).join(', ')}`).join('; ')
    }.`,
  );
  return out.join('\n');
}

/** A line per difference between a regression variant and the production machine it replaces. */
export function diffMachines(prod: AnyStateMachine, variant: AnyStateMachine): string[] {
  const out: string[] = [];
  const varModel = machineModel(variant);
  const usesOf = (kind: 'guard' | 'action', name: string) => {
    const rows = varModel.transitions.filter((t) => (kind === 'guard' ? t.guard === name : t.actions.includes(name)));
    const where = [...new Set(rows.map((t) => `${t.state || '(root)'} on ${t.event}`))];
    const entry = kind === 'action' ? varModel.states.filter((s) => s.entry.includes(name)).map((s) => `${s.path} entry`) : [];
    const all = [...where, ...entry];
    return all.length ? ` (used in ${all.map(code).join(', ')})` : '';
  };
  for (const kind of ['actions', 'guards', 'delays', 'actors'] as const) {
    const p = (prod.implementations[kind] ?? {}) as Record<string, unknown>;
    const v = (variant.implementations[kind] ?? {}) as Record<string, unknown>;
    const singular = kind.slice(0, -1);
    for (const [name, impl] of Object.entries(v)) {
      if (!(name in p)) out.push(`adds ${singular} ${code(name)}${kind === 'actions' ? usesOf('action', name) : ''}`);
      else if (p[name] !== impl) out.push(`replaces the implementation of ${singular} ${code(name)}${kind === 'actions' ? usesOf('action', name) : kind === 'guards' ? usesOf('guard', name) : ''}`);
    }
    for (const name of Object.keys(p)) if (!(name in v)) out.push(`drops ${singular} ${code(name)}`);
  }
  const prodNodes = new Map(allNodes(prod).map((n) => [relPath(n), n]));
  const varNodes = new Map(allNodes(variant).map((n) => [relPath(n), n]));
  for (const [path, vn] of varNodes) {
    const pn = prodNodes.get(path);
    const where = code(path || '(root)');
    if (!pn) {
      out.push(`adds state ${where}`);
      continue;
    }
    const pc = pn.config as { on?: Record<string, unknown>; after?: Record<string, unknown>; always?: unknown; entry?: unknown; exit?: unknown };
    const vc = vn.config as typeof pc;
    const pOn = pc.on ?? {};
    const vOn = vc.on ?? {};
    for (const e of new Set([...Object.keys(pOn), ...Object.keys(vOn)])) {
      if (pOn[e] === vOn[e]) continue;
      const before = nodeTransitions(pn).filter((t) => t.event === e);
      const after = nodeTransitions(vn).filter((t) => t.event === e);
      out.push(`state ${where}, on ${code(e)}: ${renderTransitions(before)} ⇒ ${renderTransitions(after)}`);
    }
    if (pc.after !== vc.after) {
      const pa = pc.after ?? {};
      const va = vc.after ?? {};
      for (const d of new Set([...Object.keys(pa), ...Object.keys(va)])) {
        if (pa[d] === va[d]) continue;
        if (!(d in va)) out.push(`state ${where}: drops the deadline ${code(d)} (${renderTransitions(nodeTransitions(pn).filter((t) => t.event === `after ${d}`))})`);
        else if (!(d in pa)) out.push(`state ${where}: adds the deadline ${code(d)} (${renderTransitions(nodeTransitions(vn).filter((t) => t.event === `after ${d}`))})`);
        else out.push(`state ${where}, after ${code(d)}: ${renderTransitions(nodeTransitions(pn).filter((t) => t.event === `after ${d}`))} ⇒ ${renderTransitions(nodeTransitions(vn).filter((t) => t.event === `after ${d}`))}`);
      }
    }
    if (pc.always !== vc.always) out.push(`state ${where}: eventless transitions changed: ${renderTransitions(nodeTransitions(pn).filter((t) => t.event === 'always'))} ⇒ ${renderTransitions(nodeTransitions(vn).filter((t) => t.event === 'always'))}`);
    if (pc.entry !== vc.entry) out.push(`state ${where}: entry actions changed`);
    if (pc.exit !== vc.exit) out.push(`state ${where}: exit actions changed`);
  }
  for (const path of prodNodes.keys()) if (!varNodes.has(path)) out.push(`removes state ${code(path)}`);
  return out;
}

export function regressionsBlock(): string {
  const out: string[] = [];
  const prodById = new Map(PRODUCTION_MACHINES.map((p) => [p.machine.id, p.machine]));
  out.push(
    table(
      ['variant', 'bug class', 'replaces', 'summary (`REGRESSION_VARIANTS`)', 'must break (`VARIANT_PLAN`)', 'in scenarios'],
      REGRESSION_VARIANTS.map((v) => {
        const plan = VARIANT_PLAN[v.name];
        return [code(v.name), v.bugClass, code(v.replaces), v.summary, plan ? plan.expect.join(', ') : 'NOT PLANNED', plan ? codes(plan.scenarios) : '—'];
      }),
    ),
    '',
  );
  for (const v of REGRESSION_VARIANTS) {
    const prod = prodById.get(v.replaces);
    if (!prod) throw new Error(`variant ${v.name} replaces ${v.replaces}, which is not a production machine`);
    const plan = VARIANT_PLAN[v.name];
    out.push(`#### ${v.name} (${v.bugClass}): ${v.summary}`, '');
    out.push(`Derived from \`${v.replaces}\` (variant machine id \`${v.machine.id}\`). What differs from the production machine:`, '');
    const diff = diffMachines(prod, v.machine);
    if (diff.length === 0) throw new Error(`variant ${v.name} does not differ from ${v.replaces}`);
    for (const d of diff) out.push(`- ${d}`);
    out.push('');
    if (plan) {
      out.push(`Caught as ${plan.expect.join(', ')}; try: \`node bin/xferstate.js explore --variant ${v.name} --scenario ${plan.scenarios[0]}\``, '');
    }
  }
  return out.join('\n');
}

export function scenariosBlock(): string {
  return table(
    ['scenario', 'description', 'machines (role → id)'],
    Object.entries(SCENARIOS).map(([name, make]) => {
      const sc = make();
      return [code(name), sc.description, Object.entries(sc.machines).map(([role, m]) => `${role} → ${m.id}`).join(', ')];
    }),
  );
}

export async function machinesDocBlocks(ts: typeof TS, root: string): Promise<Map<string, string>> {
  const blocks = new Map<string, string>();
  blocks.set('scenarios', scenariosBlock());
  for (const pm of PRODUCTION_MACHINES) blocks.set(`machine:${pm.machine.id}`, machineBlock(ts, root, pm));
  blocks.set('regressions', regressionsBlock());
  return blocks;
}
