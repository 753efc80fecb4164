import { regenerateDocs } from './index.js';

/**
 * `node dist/src/docs/main.js [--check]`: the same as `xferstate docs`, for checkouts whose CLI does not
 * list the docs command.
 */
const check = process.argv.includes('--check');
const results = await regenerateDocs({ write: !check });
for (const r of results) console.log(`${r.file}: ${r.upToDate ? 'up to date' : check ? 'OUT OF DATE' : 'regenerated'}`);
if (check && results.some((r) => !r.upToDate)) process.exitCode = 1;
