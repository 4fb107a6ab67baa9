// What every page shares: the engine (from the page's URL parameters), the navigation bar, and
// `window.qkv`, which puts the library and the page's engine in the devtools console (and lets the
// browser tests drive the page).
import * as qkv from 'qkv';
import './style.css';

/**
 * `?threads=N|auto` and `?simd=auto|simd|relaxed` on the page's URL, passed to createEngine().
 * Without COOP/COEP headers a page is not cross-origin isolated and the engine runs one thread.
 */
export function engineOptions(search = location.search) {
  const params = new URLSearchParams(search);
  const threads = params.get('threads');
  return {
    threads: threads === null ? 1 : threads === 'auto' ? 'auto' : Number(threads),
    simd: params.get('simd') ?? 'auto',
  };
}

/** Creates the page's engine, shows what it runs on in the footer, and exposes both on window.qkv. */
export async function startEngine() {
  const engine = await qkv.createEngine(engineOptions());
  const { simd, threads } = engine.info;
  const footer = document.querySelector('#runtime');
  if (footer) {
    footer.textContent = `wasm engine: ${simd === 'relaxed' ? 'relaxed SIMD' : 'SIMD'}, ${threads} thread${threads === 1 ? '' : 's'}`
      + ` · cross-origin isolated: ${globalThis.crossOriginIsolated ? 'yes' : 'no'}`
      + ` · ${navigator.hardwareConcurrency ?? '?'} logical cores`;
  }
  window.qkv = { ...qkv, engine };
  return engine;
}

/** Writes the navigation bar, marking the current page. */
export function nav(current) {
  const pages = [['index.html', 'The essay: waist → weight'], ['heads.html', 'Multi-head attention'], ['bench.html', 'Benchmark'], ['models.html', 'Models']];
  document.querySelector('nav').innerHTML = `<strong>qkv</strong> ${pages
    .map(([href, title]) => (href === current ? `<span aria-current="page">${title}</span>` : `<a href="./${href}${location.search}">${title}</a>`))
    .join('')}`;
}

/** Marks the page as rendered: the browser tests wait for data-ready. */
export function ready() {
  document.body.dataset.ready = 'true';
}

/** Shows an error in the page instead of failing silently. */
export function fail(error) {
  console.error(error);
  const box = document.createElement('pre');
  box.className = 'error';
  box.textContent = String(error?.stack ?? error);
  document.querySelector('main').prepend(box);
  document.body.dataset.ready = 'error';
}

/** mulberry32: a seeded PRNG, so that a page shows the same random parameters on every load. */
export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
