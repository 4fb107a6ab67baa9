// The sizes the README states hold the built files to them: the four .wasm builds, the package entry
// and `qkv/inline`, each within SIZE_MARGIN of the figure. A build that outgrows (or shrinks past) its
// figure fails here, and the README gets the new figure (`npm run bench -- --markdown` prints it).
import { readFileSync, statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

/** How far a built file may drift from the README's figure, as a fraction of the figure. */
const SIZE_MARGIN = 0.1;

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8').replace(/\s+/g, ' ');
const kB = (path: string) => statSync(new URL(`../${path}`, import.meta.url)).size / 1000;

/** The number before " KB" in the first README passage that `pattern` matches (its first group). */
function stated(pattern: RegExp): number {
  const m = readme.match(pattern);
  if (!m) throw new Error(`README has no passage matching ${pattern}`);
  return Number(m[1]);
}

const figures: [file: string, where: string, pattern: RegExp][] = [
  ['build/qkv.wasm', 'Footprint', /Footprint: .*?qkv\.wasm ([\d.]+) KB/],
  ['build/qkv-relaxed.wasm', 'Footprint', /Footprint: .*?qkv-relaxed\.wasm ([\d.]+) KB/],
  ['build/qkv-threads.wasm', 'Footprint', /Footprint: .*?qkv-threads\.wasm ([\d.]+) KB/],
  ['build/qkv-relaxed-threads.wasm', 'Footprint', /Footprint: .*?qkv-relaxed-threads\.wasm ([\d.]+) KB/],
  ['dist/bundle/qkv.js', 'Footprint', /Footprint: .*?\(dist\/bundle\/qkv\.js\) is ([\d.]+) KB/],
  ['dist/bundle/inline.js', 'Footprint', /Footprint: .*?`qkv\/inline` adds ([\d.]+) KB/],
  // the prose that rounds them
  ['build/qkv.wasm', 'Layout: "about N KB each"', /builds of the same kernels ship in `build\/` \(about ([\d.]+) KB each\)/],
  ['dist/bundle/inline.js', 'bundlers: "N KB of JS"', /both builds embedded as base64 \(([\d.]+) KB of JS/],
];

describe('the sizes the README states', () => {
  it.each(figures)(`%s is within ${SIZE_MARGIN * 100}% of the README's figure (%s)`, (file, _where, pattern) => {
    const figure = stated(pattern), actual = kB(file);
    expect(Math.abs(actual - figure) / figure, `${file}: ${actual.toFixed(1)} KB built, the README says ${figure} KB`)
      .toBeLessThanOrEqual(SIZE_MARGIN);
  });
});
