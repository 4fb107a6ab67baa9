// Safety of what the package ships: no code built from strings (eval, new Function, string
// timers), which a strict Content-Security-Policy forbids and which would turn data into code;
// no install scripts in the package or in its runtime dependencies.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = new URL('..', import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

/** Every .ts/.js/.mjs/.cjs file under `dir` (declaration maps and source maps left out). */
function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) { if (name !== 'node_modules') out.push(...sources(path)); }
    else if (/\.(ts|js|mjs|cjs)$/.test(name)) out.push(path);
  }
  return out;
}

/** Code that runs a string: eval(…), new Function(…), Function(…), setTimeout/setInterval("…"). */
const STRING_CODE = [/\beval\s*\(/, /\bnew\s+Function\s*\(/, /(?<![\w.$])Function\s*\(/, /\bset(?:Timeout|Interval)\s*\(\s*['"`]/];

function offenders(files: string[]): string[] {
  const found: string[] = [];
  for (const file of files) {
    readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
      if (STRING_CODE.some((re) => re.test(line))) found.push(`${file.slice(root.length)}:${i + 1}: ${line.trim()}`);
    });
  }
  return found;
}

/** The lifecycle scripts npm runs on install (prepare: on install from git). */
const INSTALL_SCRIPTS = ['preinstall', 'install', 'postinstall', 'prepare'];

describe('what the package ships', () => {
  it('the patterns find what they are meant to find', () => {
    const hits = ['eval("1")', 'new Function("return 1")', 'Function("a", "return a")', "setTimeout('go()', 1)"];
    for (const line of hits) expect(STRING_CODE.some((re) => re.test(line)), line).toBe(true);
    const misses = ['evaluate(x)', 'isFunction(x)', 'myFunction(x)', 'x.Function(y)', 'setTimeout(() => go(), 1)', 'type F = Function;'];
    for (const line of misses) expect(STRING_CODE.some((re) => re.test(line)), line).toBe(false);
  });

  it('src/ runs no code from strings', () => {
    expect(offenders(sources(join(root, 'src')))).toEqual([]);
  });

  it.skipIf(!existsSync(join(root, 'dist')))('dist/ (the built JS) runs no code from strings', () => {
    expect(offenders(sources(join(root, 'dist')))).toEqual([]);
  });

  it('the package has no install scripts', () => {
    expect(Object.keys(pkg.scripts ?? {}).filter((s) => INSTALL_SCRIPTS.includes(s))).toEqual([]);
  });

  it('its runtime dependencies have no install scripts, no dependencies of their own, and run no code from strings', () => {
    for (const name of Object.keys(pkg.dependencies ?? {})) {
      const dir = join(root, 'node_modules', name);
      const dep = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
      expect(Object.keys(dep.scripts ?? {}).filter((s) => INSTALL_SCRIPTS.includes(s)), name).toEqual([]);
      // a new transitive dependency should be a decision, seen here
      expect(Object.keys(dep.dependencies ?? {}), name).toEqual([]);
      expect(offenders(sources(dir).filter((f) => !f.includes('/tests/'))), name).toEqual([]);
    }
  });
});
