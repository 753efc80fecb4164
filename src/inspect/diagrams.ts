import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { AnyStateMachine } from 'xstate';
import {
  blockLeaseMachine,
  contextSendMachine,
  generationReceiveMachine,
  REGRESSION_VARIANTS,
  requestLifecycleMachine,
  transferHandleMachine,
} from '../../machines/index.js';
import type { DotOptions } from './dot.js';
import { machineToDot } from './dot.js';

/** The production machines, in the order the docs present them. Diagram files are named by machine id. */
export const PRODUCTION_MACHINES: readonly AnyStateMachine[] = [
  transferHandleMachine,
  contextSendMachine,
  generationReceiveMachine,
  requestLifecycleMachine,
  blockLeaseMachine,
];

export interface DiagramEntry {
  /**
   * The diagram's key: the machine id for a production machine, `variant.<name>` for a regression variant
   * (several variants keep their production machine's id, so the id alone does not name a diagram).
   */
  key: string;
  /** The machine id (the prefix of every state node id in the SVG). */
  id: string;
  machine: AnyStateMachine;
  kind: 'production' | 'variant';
  /** For a regression variant: its name and the production machine it replaces. */
  variant?: string;
  replaces?: string;
  summary?: string;
}

/** Every machine the inspector can draw: the production machines, then each regression variant. */
export function diagramEntries(options: { variants?: boolean } = {}): DiagramEntry[] {
  const out: DiagramEntry[] = PRODUCTION_MACHINES.map((m) => ({ key: m.id, id: m.id, machine: m, kind: 'production' as const }));
  if (options.variants) {
    for (const v of REGRESSION_VARIANTS) out.push({ key: `variant.${v.name}`, id: v.machine.id, machine: v.machine, kind: 'variant', variant: v.name, replaces: v.replaces, summary: v.summary });
  }
  return out;
}

type Viz = Awaited<ReturnType<typeof import('@viz-js/viz').instance>>;
let vizPromise: Promise<Viz> | null = null;

/** Graphviz compiled to WASM, loaded once per process (no network, no system graphviz). */
export function viz(): Promise<Viz> {
  vizPromise ??= import('@viz-js/viz').then((m) => m.instance());
  return vizPromise;
}

export async function dotToSvg(dot: string): Promise<string> {
  const v = await viz();
  const result = v.render(dot, { format: 'svg' });
  if (result.status !== 'success') throw new Error(`graphviz failed: ${result.errors.map((e) => e.message).join('; ')}`);
  const warnings = result.errors.filter((e) => e.level === 'warning');
  if (warnings.length > 0) throw new Error(`graphviz warnings: ${warnings.map((e) => e.message).join('; ')}`);
  return result.output;
}

export async function machineToSvg(machine: AnyStateMachine, options?: DotOptions): Promise<string> {
  return dotToSvg(machineToDot(machine, options));
}

/** The file a diagram is written to: `<machineId>.svg`, or `variants/<name>.svg` for a regression variant. */
export function diagramFile(e: DiagramEntry): string {
  return e.kind === 'variant' ? `variants/${e.variant}.svg` : `${e.id}.svg`;
}

/** Render the selected machines; `machine` selects one by id or variant name. Deterministic output. */
export async function renderDiagrams(options: { machine?: string; variants?: boolean } = {}): Promise<Array<{ key: string; file: string; svg: string }>> {
  let entries = diagramEntries({ variants: options.variants || options.machine !== undefined });
  if (options.machine) {
    entries = entries.filter((e) => (e.kind === 'production' && e.id === options.machine) || e.variant === options.machine);
    if (entries.length === 0) throw new Error(`unknown machine '${options.machine}'; known: ${diagramEntries({ variants: true }).map((e) => e.variant ?? e.id).join(', ')}`);
  }
  const out: Array<{ key: string; file: string; svg: string }> = [];
  for (const e of entries) out.push({ key: e.key, file: diagramFile(e), svg: await machineToSvg(e.machine) });
  return out;
}

export async function writeDiagrams(dir: string, options: { machine?: string; variants?: boolean } = {}): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  for (const d of await renderDiagrams(options)) {
    const path = join(dir, d.file);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, d.svg);
    written.push(path);
  }
  return written;
}
