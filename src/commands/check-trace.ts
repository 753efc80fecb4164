import type { Command } from 'commander';
import { checkTraceFile, conforms } from '../executor/trace.js';

export function register(program: Command): void {
  program
    .command('check-trace')
    .description('replay a transition trace (burst --trace) through the machines and report every transition they forbid, every cut or edited record, and blocks freed while their receiver still receives')
    .argument('<file>', 'JSON-lines trace')
    .option('--json', 'print JSON')
    .action((file: string, opts: { json?: boolean }) => {
      const r = checkTraceFile(file);
      if (opts.json) console.log(JSON.stringify({ ...r, conforms: conforms(r) }));
      else {
        console.log(`${r.records} records, ${r.actors} actors, ${r.transitions} transitions checked`);
        for (const v of r.violations.slice(0, 50)) {
          console.log(`line ${v.line}: ${v.actor} in ${JSON.stringify(v.from)} on ${v.event}: trace says ${JSON.stringify(v.recorded)}, the machine goes to ${JSON.stringify(v.allowed)}`);
        }
        for (const p of r.problems.slice(0, 50)) console.log(`line ${p.line}: ${p.kind}: ${p.message}`);
        for (const m of r.malformed.slice(0, 20)) console.log(`line ${m.line}: ${m.reason}`);
        console.log(conforms(r) ? 'conforms' : `${r.violations.length} forbidden transitions, ${r.problems.length} other problems, ${r.malformed.length} malformed lines`);
      }
      process.exitCode = conforms(r) ? 0 : 1;
    });
}
