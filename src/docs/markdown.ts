/** Small markdown helpers and the marker protocol for generated sections. */

export function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

export function table(head: string[], rows: string[][]): string {
  const lines = [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`];
  for (const r of rows) lines.push(`| ${r.map(cell).join(' | ')} |`);
  return lines.join('\n');
}

export const code = (s: string): string => `\`${s}\``;
export const codes = (xs: readonly string[], none = '—'): string => (xs.length === 0 ? none : xs.map(code).join(', '));

const begin = (name: string) => `<!-- generated:${name}:begin -->`;
const end = (name: string) => `<!-- generated:${name}:end -->`;

/** Names of the generated blocks a document contains, in order (markers count only on a line of their own). */
export function blockNames(text: string): string[] {
  return [...text.matchAll(/^<!-- generated:(\S+):begin -->$/gm)].map((m) => m[1]!);
}

/** Offset of a marker that stands on a line of its own, or -1. */
function markerAt(text: string, marker: string): number {
  for (let i = text.indexOf(marker); i >= 0; i = text.indexOf(marker, i + 1)) {
    const lineStart = i === 0 || text[i - 1] === '\n';
    const lineEnd = i + marker.length === text.length || text[i + marker.length] === '\n';
    if (lineStart && lineEnd) return i;
  }
  return -1;
}

/**
 * Replace the body of every generated block in `text` with `blocks[name]`. Every marker pair in the
 * text must have content and every block must have its markers: a missing one is an error, not a skip.
 */
export function applyBlocks(text: string, blocks: ReadonlyMap<string, string>, file: string): string {
  const names = blockNames(text);
  for (const name of blocks.keys()) if (!names.includes(name)) throw new Error(`${file}: no markers for generated block '${name}'`);
  let out = text;
  for (const name of names) {
    const body = blocks.get(name);
    if (body === undefined) throw new Error(`${file}: markers for '${name}', which the generator does not produce`);
    const b = markerAt(out, begin(name));
    const e = markerAt(out, end(name));
    if (b < 0 || e < b) throw new Error(`${file}: block '${name}' has no end marker after its begin marker`);
    out = `${out.slice(0, b + begin(name).length)}\n${body.trim()}\n${out.slice(e)}`;
  }
  return out;
}

/** An empty marker pair, for writing a new document skeleton. */
export function markers(name: string): string {
  return `${begin(name)}\n${end(name)}`;
}
