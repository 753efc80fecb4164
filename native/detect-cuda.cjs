#!/usr/bin/env node
// Tells binding.gyp whether the optional cuda backend can be built, and with which flags.
//   node detect-cuda.cjs --found    -> "1" or "0"
//   node detect-cuda.cjs --nvcc     -> path of nvcc (empty when absent)
//   node detect-cuda.cjs --include  -> the toolkit's include directory
//   node detect-cuda.cjs --libs     -> linker flags (static CUDA runtime: the addon still loads
//                                      on a machine without a GPU driver, and says so at agent creation)
// The toolkit is found at $CUDA_HOME, $CUDA_PATH or /usr/local/cuda (bin/nvcc, include/cuda_runtime_api.h,
// lib64/libcudart_static.a). XFERSTATE_CUDA=0 builds without it even when found.
'use strict';
const { existsSync } = require('node:fs');
const path = require('node:path');

function detect() {
  if (process.env.XFERSTATE_CUDA === '0') return null;
  if (!existsSync(path.join(__dirname, 'src', 'backend_cuda.cc'))) return null;
  const roots = [process.env.CUDA_HOME, process.env.CUDA_PATH, '/usr/local/cuda'].filter((r) => typeof r === 'string' && r.length > 0);
  for (const root of roots) {
    const nvcc = path.join(root, 'bin', 'nvcc');
    const include = path.join(root, 'include');
    const libDir = ['lib64', 'lib', 'targets/x86_64-linux/lib'].map((d) => path.join(root, d)).find((d) => existsSync(path.join(d, 'libcudart_static.a')));
    if (existsSync(nvcc) && existsSync(path.join(include, 'cuda_runtime_api.h')) && libDir) {
      return { nvcc, include, libs: `-L${libDir} -lcudart_static -ldl -lrt -lpthread` };
    }
  }
  return null;
}

const found = detect();
const mode = process.argv[2] ?? '--found';
if (mode === '--found') process.stdout.write(found ? '1' : '0');
else if (mode === '--nvcc') process.stdout.write(found ? found.nvcc : '');
else if (mode === '--include') process.stdout.write(found ? found.include : '');
else if (mode === '--libs') process.stdout.write(found ? found.libs : '');
else {
  process.stderr.write('usage: detect-cuda.cjs --found|--nvcc|--include|--libs\n');
  process.exit(2);
}
