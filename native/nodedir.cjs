#!/usr/bin/env node
// Prints `--nodedir=<dir>` for the directory that holds this Node's headers (include/node/common.gypi),
// for node-gyp, so building the addon never downloads headers. Prints nothing when
// no local headers are found (node-gyp then falls back to its own download).
'use strict';
const { existsSync } = require('node:fs');
const path = require('node:path');

const candidates = [
  process.env.npm_config_nodedir,
  path.resolve(path.dirname(process.execPath), '..'),
  '/usr',
  '/usr/local',
].filter(Boolean);
const dir = candidates.find((d) => existsSync(path.join(d, 'include', 'node', 'common.gypi')));
if (dir) process.stdout.write(`--nodedir=${dir}`);
