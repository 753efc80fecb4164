import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';

/**
 * The release as a user gets it: `npm pack`, install the tarball into an empty project (from the local
 * npm cache where it can: --prefer-offline), import every entry point and every export, type-check a
 * consumer against the shipped .d.ts, and run the documented examples there. npm 11 blocks dependency
 * install scripts by default, so this also proves the shipped prebuilt addon works with no script run.
 */
const root = fileURLToPath(new URL('../..', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'xferstate-pack-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

// The outer `npm test` leaves npm_* variables (lifecycle, prefix, …) that must not steer the inner npm.
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('npm_') || k === 'npm_config_cache'));
const run = (cmd: string, args: string[], cwd: string) => execFileSync(cmd, args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 240_000 });

it('packs, installs into an empty project, imports every export and runs the examples', { timeout: 300_000 }, () => {
  expect(existsSync(join(root, 'dist/src/index.js')), 'dist/ is missing: run `npm run build` (npm test does it in pretest)').toBe(true);
  // prepare (tsc) already ran as pretest; prepack's check runs here explicitly, so no script rewrites
  // dist/ while other test files read it.
  run(process.execPath, ['native/install.cjs', '--check-shipped'], root);
  const [packed] = JSON.parse(run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], root)) as Array<{ filename: string; files: Array<{ path: string }> }>;
  const files = packed!.files.map((f) => f.path);
  for (const f of ['dist/src/index.js', 'dist/src/index.d.ts', 'dist/machines/index.d.ts', 'dist/src/native/index.js', 'dist/src/inspect/index.js', 'dist/src/metrics/index.js', 'native/build/Release/xferstate_native.node', 'native/binding.gyp', 'native/src/addon.cc', 'native/install.cjs', 'src/inspect/page/index.html', 'bin/xferstate.js']) {
    expect(files, f).toContain(f);
  }
  // Every helper script binding.gyp runs at build time is shipped (the fallback build needs them).
  for (const script of readFileSync(join(root, 'native/binding.gyp'), 'utf8').matchAll(/node ([\w-]+\.cjs)/g)) expect(files, script[1]).toContain(`native/${script[1]}`);
  // Nothing a user does not need: no tests, no TypeScript sources, no maps, no build intermediates.
  const stray = files.filter((f) => /^(test|docs|machines)\//.test(f) || /\.map$/.test(f) || (/\.ts$/.test(f) && !/\.d\.ts$/.test(f)) || /^native\/build\/(?!Release\/xferstate_native\.node$)/.test(f) || (f.startsWith('src/') && !f.startsWith('src/inspect/page/')));
  expect(stray).toEqual([]);

  const app = join(work, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', join(work, packed!.filename)], app);

  writeFileSync(
    join(app, 'check.mjs'),
    `const out = {};
for (const entry of ['xferstate', 'xferstate/machines', 'xferstate/native', 'xferstate/inspect', 'xferstate/metrics']) {
  const m = await import(entry);
  const names = Object.keys(m);
  const missing = names.filter((n) => m[n] === undefined);
  if (names.length === 0 || missing.length > 0) throw new Error(entry + ': empty or undefined exports ' + missing.join(','));
  out[entry] = names.length;
}
const { Agent, availableBackends, EngineHost, transferHandleMachine } = await import('xferstate');
const agent = new Agent('pack-check-' + process.pid);
out.backends = availableBackends();
out.semantics = Object.keys(agent.semantics).length > 0;
agent.close();
out.engine = typeof new EngineHost({ machines: { handle: transferHandleMachine }, actions: { handle: { postTransfer() {}, abortTransfer() {}, releaseHandle() {} } } }).spawn;
console.log(JSON.stringify(out));
`,
  );
  const checked = JSON.parse(run(process.execPath, ['check.mjs'], app)) as Record<string, unknown>;
  expect(checked.backends).toContain('shm');
  expect(checked.semantics).toBe(true);
  expect(checked.engine).toBe('function');
  for (const e of ['xferstate', 'xferstate/machines', 'xferstate/native', 'xferstate/inspect', 'xferstate/metrics']) expect(checked[e], e).toBeGreaterThan(0);

  // The shipped types: a typed consumer compiles, and a wrong event for a role does not.
  writeFileSync(
    join(app, 'consumer.ts'),
    `import { EngineHost, blockLeaseMachine, transferHandleMachine } from 'xferstate';
import { DEFAULT_DELAYS } from 'xferstate/machines';
import type { Agent } from 'xferstate/native';
import type { Inspector } from 'xferstate/inspect';
import { XferMetrics } from 'xferstate/metrics';
const host = new EngineHost({
  machines: { handle: transferHandleMachine, lease: blockLeaseMachine },
  actions: { handle: { postTransfer() {}, abortTransfer() {}, releaseHandle() {} }, lease: { quarantineEntered() {}, quarantineReleased() {}, fencePeer() {}, retireBlocks() {}, returnBlocks() {}, withdrawFence() {} } },
});
host.send('r1.handle', { type: 'POST' });
// @ts-expect-error a lease does not take POST
host.send('r1.lease', { type: 'POST' });
export const used: [number, Agent | null, Inspector | null, XferMetrics] = [DEFAULT_DELAYS.drainTimeout, null, null, new XferMetrics()];
`,
  );
  writeFileSync(
    join(app, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, typeRoots: [join(root, 'node_modules/@types')], types: ['node'] }, files: ['consumer.ts'] }),
  );
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  run(process.execPath, [tsc, '-p', app], app);

  // The CLI through its bin, and every documented example, from the installed package.
  expect(run(process.execPath, ['node_modules/xferstate/bin/xferstate.js', '--help'], app)).toMatch(/burst/);
  const examples = readdirSync(join(root, 'docs/examples')).filter((f) => f.endsWith('.mjs'));
  expect(examples.length).toBeGreaterThanOrEqual(2);
  for (const f of examples) {
    copyFileSync(join(root, 'docs/examples', f), join(app, f));
    const out = run(process.execPath, [f], app);
    expect(() => JSON.parse(out.trim().split('\n').pop()!), f).not.toThrow();
  }
});
