#!/usr/bin/env node
// The package's install step for the native addon.
//
// - In a git checkout (`npm ci` while developing): always build from source with node-gyp.
// - In an installed package: the tarball ships a prebuilt shm-only addon for linux-x64 at
//   native/build/Release/ (where the facade looks). It is kept when it loads on this machine; otherwise
//   (another platform, another libc) the shipped sources are built with node-gyp. npm 11 blocks
//   dependency install scripts unless approved, so the prebuilt addon must work with no script at all.
// - `--check-shipped` (the prepack script): refuse to pack an addon that would not load elsewhere
//   (linking NIXL/UCX or built with sanitizers), so a tarball never ships a machine-specific binary.
'use strict';
const { existsSync, readFileSync } = require('node:fs');
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const here = __dirname;
const root = path.dirname(here);
const addon = path.join(here, 'build', 'Release', 'xferstate_native.node');

function loads(file) {
  // In a child process: a failed dlopen must not take this process with it.
  const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(file)})`], { stdio: 'ignore' });
  return r.status === 0;
}

function build() {
  const nodedir = spawnSync(process.execPath, [path.join(here, 'nodedir.cjs')], { encoding: 'utf8' }).stdout.trim();
  const args = ['rebuild', `--directory=${here}`, ...(nodedir ? [nodedir] : [])];
  // npm puts its own node-gyp on PATH for lifecycle scripts; npm_config_node_gyp names it too.
  const gyp = process.env.npm_config_node_gyp;
  const r = gyp ? spawnSync(process.execPath, [gyp, ...args], { stdio: 'inherit' }) : spawnSync('node-gyp', args, { stdio: 'inherit', shell: true });
  process.exit(r.status ?? 1);
}

if (process.argv.includes('--check-shipped')) {
  if (!existsSync(addon)) {
    console.error('xferstate: native/build/Release/xferstate_native.node is missing: run `npm ci` before packing');
    process.exit(3);
  }
  const mk = path.join(here, 'build', 'xferstate_native.target.mk');
  const defs = existsSync(mk) ? readFileSync(mk, 'utf8') : '';
  if (/XFERSTATE_ASAN/.test(defs)) {
    console.error('xferstate: the addon in native/build was built with sanitizers; pack a normal build (npm run install)');
    process.exit(3);
  }
  // A shipped addon may link only the C/C++ runtime: a NIXL build links libnixl/UCX, which a user's
  // machine need not have. (The CUDA backend links cudart statically and loads the driver at run time.)
  const ldd = spawnSync('ldd', [addon], { encoding: 'utf8' });
  const system = /^(linux-vdso|ld-linux|libc|libm|libstdc\+\+|libgcc_s|libpthread|librt|libdl)[.-]/;
  const foreign = ldd.status === 0 ? ldd.stdout.split('\n').map((l) => l.trim().split(/\s+/)[0]).filter((l) => l && !system.test(path.basename(l))) : [];
  if (foreign.length > 0) {
    console.error(`xferstate: the addon in native/build links ${foreign.join(', ')}, which a user's machine may lack; pack a build without it (NIXL_PREFIX= npm run install)`);
    process.exit(3);
  }
  process.exit(0);
}

const checkout = existsSync(path.join(root, '.git'));
if (!checkout && existsSync(addon) && process.env.XFERSTATE_BUILD_FROM_SOURCE !== '1' && loads(addon)) {
  process.exit(0);
}
build();
