import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as TS from 'typescript';

/**
 * Reads facts the runtime objects do not carry from the TypeScript sources: the JSDoc of each named
 * action / delay and the parameter type an engine action takes. The sources are the single truth; this
 * only reads them. `typescript` is a dev dependency, so it is loaded lazily (only `xferstate docs` and
 * the docs test need it).
 */
export async function loadTypeScript(): Promise<typeof TS> {
  const mod = (await import('typescript')) as unknown as { default?: typeof TS } & typeof TS;
  return mod.default ?? mod;
}

/** The repository root: the nearest ancestor of this module holding the xferstate package.json (works from src/ and dist/src/). */
export function repoRoot(from: string = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'xferstate') return dir;
    if (dirname(dir) === dir) throw new Error(`no xferstate package.json above ${from}`);
  }
}

export interface PropertyDoc {
  /** The JSDoc text, whitespace collapsed; '' when there is none. */
  doc: string;
  /** For a function-valued property: the type text of its second parameter (an action's params). */
  paramsType: string | null;
}

function parse(ts: typeof TS, file: string): TS.SourceFile {
  return ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
}

function jsDocOf(ts: typeof TS, node: TS.Node): string {
  const docs = ts.getJSDocCommentsAndTags(node).filter(ts.isJSDoc);
  return docs
    .map((d) => ts.getTextOfJSDocComment(d.comment) ?? '')
    .join(' ')
    .replace(/\s+/g, ' ')
    .trim();
}

function propertyName(ts: typeof TS, p: TS.ObjectLiteralElementLike): string | null {
  if (!p.name) return null;
  if (ts.isIdentifier(p.name) || ts.isStringLiteral(p.name)) return p.name.text;
  return null;
}

function unwrap(ts: typeof TS, e: TS.Expression): TS.Expression {
  while (ts.isAsExpression(e) || ts.isSatisfiesExpression(e) || ts.isParenthesizedExpression(e)) e = e.expression;
  return e;
}

function docsOfObject(ts: typeof TS, obj: TS.ObjectLiteralExpression): Map<string, PropertyDoc> {
  const out = new Map<string, PropertyDoc>();
  for (const p of obj.properties) {
    const name = propertyName(ts, p);
    if (!name) continue;
    let paramsType: string | null = null;
    if (ts.isPropertyAssignment(p)) {
      const init = unwrap(ts, p.initializer);
      if ((ts.isArrowFunction(init) || ts.isFunctionExpression(init)) && init.parameters[1]?.type) {
        paramsType = init.parameters[1].type.getText().replace(/\s+/g, ' ');
      }
    }
    out.set(name, { doc: jsDocOf(ts, p), paramsType });
  }
  return out;
}

/**
 * The JSDoc of every property of the `setup({ ... })` section `section` ('actions', 'guards', 'delays')
 * in a machine source file.
 */
export function setupSectionDocs(ts: typeof TS, file: string, section: string): Map<string, PropertyDoc> {
  const sf = parse(ts, file);
  let found: Map<string, PropertyDoc> | null = null;
  const visit = (n: TS.Node): void => {
    if (found) return;
    if (ts.isCallExpression(n) && ts.isIdentifier(n.expression) && n.expression.text === 'setup') {
      const arg = n.arguments[0];
      if (arg && ts.isObjectLiteralExpression(arg)) {
        for (const p of arg.properties) {
          if (propertyName(ts, p) === section && ts.isPropertyAssignment(p)) {
            const init = unwrap(ts, p.initializer);
            if (ts.isObjectLiteralExpression(init)) found = docsOfObject(ts, init);
          }
        }
      }
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return found ?? new Map();
}

/** The JSDoc of every property of an object literal bound to `const <name> = { ... }` in a file. */
export function constObjectDocs(ts: typeof TS, file: string, name: string): Map<string, PropertyDoc> {
  const sf = parse(ts, file);
  let found: Map<string, PropertyDoc> | null = null;
  const visit = (n: TS.Node): void => {
    if (found) return;
    if (ts.isVariableDeclaration(n) && ts.isIdentifier(n.name) && n.name.text === name && n.initializer) {
      const init = unwrap(ts, n.initializer);
      if (ts.isObjectLiteralExpression(init)) found = docsOfObject(ts, init);
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  if (!found) throw new Error(`no object literal '${name}' in ${file}`);
  return found;
}

/** The string values of an object literal of string literals (`const NAME = { key: 'text', ... }`). */
export function constStringRecord(ts: typeof TS, file: string, name: string): Record<string, string> {
  const sf = parse(ts, file);
  const out: Record<string, string> = {};
  let seen = false;
  const visit = (n: TS.Node): void => {
    if (ts.isVariableDeclaration(n) && ts.isIdentifier(n.name) && n.name.text === name && n.initializer) {
      const init = unwrap(ts, n.initializer);
      if (ts.isObjectLiteralExpression(init)) {
        seen = true;
        for (const p of init.properties) {
          const key = propertyName(ts, p);
          if (key && ts.isPropertyAssignment(p) && (ts.isStringLiteral(p.initializer) || ts.isNoSubstitutionTemplateLiteral(p.initializer))) out[key] = p.initializer.text;
        }
      }
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  if (!seen) throw new Error(`no object literal '${name}' in ${file}`);
  return out;
}
