#!/usr/bin/env node
// Builds the addon with AddressSanitizer + UndefinedBehaviorSanitizer into native/build-asan/
// (a copy of binding.gyp and src/, built with GYP_DEFINES=xferstate_asan=1), leaving native/build/ untouched.
//
//   node native/build-asan.mjs          # build, then print how to run the tests under it
//   node native/build-asan.mjs --test   # build, then run `npx vitest run test/native` under ASan
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const nativeDir = path.dirname(fileURLToPath(import.meta.url));
const root = path.dirname(nativeDir);
const work = path.join(nativeDir, 'build-asan');

function nodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ].filter(Boolean);
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw new Error('node-gyp not found (it ships with npm); set npm_config_node_gyp to its node-gyp.js');
  return found;
}

rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });
// Every file binding.gyp runs must come along (detect-cuda.cjs was missing once the cuda backend landed).
for (const entry of ['binding.gyp', 'detect-nixl.cjs', 'detect-cuda.cjs', 'nodedir.cjs', 'src']) {
  cpSync(path.join(nativeDir, entry), path.join(work, entry), { recursive: true });
}
const nodedir = execFileSync(process.execPath, [path.join(nativeDir, 'nodedir.cjs')], { encoding: 'utf8' }).trim();
const gypArgs = [nodeGyp(), 'rebuild', `--directory=${work}`, ...(nodedir ? [nodedir] : [])];
// gyp reads GYP_DEFINES: xferstate_asan=1 selects the sanitizer flags in binding.gyp.
const build = spawnSync(process.execPath, gypArgs, { stdio: 'inherit', cwd: root, env: { ...process.env, GYP_DEFINES: 'xferstate_asan=1' } });
if (build.status !== 0) process.exit(build.status ?? 1);

const addon = path.join(work, 'build', 'Release', 'xferstate_native.node');
const libasan = execFileSync('gcc', ['-print-file-name=libasan.so'], { encoding: 'utf8' }).trim();
const env = {
  XFERSTATE_NATIVE_ADDON: addon,
  LD_PRELOAD: libasan,
  // Node itself is not built with ASan and keeps memory until exit: leak reports are noise here.
  ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1:halt_on_error=1',
  UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
};
console.log(`\nASan/UBSan addon: ${addon}`);
console.log('run the native tests under it with:');
console.log(
  `  ${Object.entries(env)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')} npx vitest run test/native`,
);
if (process.argv.includes('--test')) {
  const run = spawnSync('npx', ['vitest', 'run', 'test/native'], { stdio: 'inherit', cwd: root, env: { ...process.env, ...env } });
  process.exit(run.status ?? 1);
}
