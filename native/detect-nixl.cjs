#!/usr/bin/env node
// Tells binding.gyp whether the optional NIXL backend can be built, and with which flags.
//   node detect-nixl.cjs --found   -> "1" or "0"
//   node detect-nixl.cjs --cflags  -> compiler flags (empty when absent)
//   node detect-nixl.cjs --libs    -> linker flags (empty when absent)
// NIXL is found through `pkg-config nixl`, or NIXL_PREFIX (include/ and lib/ or lib64/ below it).
// The backend also needs its source, src/backend_nixl.cc; without it the shm-only addon builds.
'use strict';
const { execFileSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const path = require('node:path');

function pkgConfig(args) {
  try {
    return execFileSync('pkg-config', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

function detect() {
  const source = path.join(__dirname, 'src', 'backend_nixl.cc');
  if (!existsSync(source)) return null;
  const prefix = process.env.NIXL_PREFIX;
  if (prefix) {
    const include = path.join(prefix, 'include');
    const libDir = ['lib64', 'lib', 'lib/x86_64-linux-gnu'].map((d) => path.join(prefix, d)).find((d) => existsSync(d));
    if (existsSync(path.join(include, 'nixl.h')) && libDir) {
      return { cflags: `-I${include}`, libs: `-L${libDir} -Wl,--disable-new-dtags,-rpath,${libDir} -lnixl -lnixl_build -lserdes` };
    }
    return null;
  }
  if (pkgConfig(['--exists', 'nixl']) === null) return null;
  return { cflags: pkgConfig(['--cflags', 'nixl']) ?? '', libs: pkgConfig(['--libs', 'nixl']) ?? '' };
}

const found = detect();
const mode = process.argv[2] ?? '--found';
if (mode === '--found') process.stdout.write(found ? '1' : '0');
else if (mode === '--cflags') process.stdout.write(found ? found.cflags : '');
else if (mode === '--libs') process.stdout.write(found ? found.libs : '');
else {
  process.stderr.write(`usage: detect-nixl.cjs --found|--cflags|--libs\n`);
  process.exit(2);
}
