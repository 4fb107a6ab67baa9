// qkv in serverless and edge runtimes, served locally over HTTP and checked against the reference
// engine. Run by .ci/runtimes after a build, with the runtimes of .ci/tools installed:
//
//   node test/edge/run.js
//
// - workerd (Cloudflare Workers' runtime, the `workerd` npm package's binary): test/edge/worker.js
//   bundled by esbuild as Wrangler bundles a Worker (conditions workerd, worker, browser; a .wasm
//   import becomes a wasm module of the Worker; the fixture's files its text and data modules),
//   served from a capnp config on 127.0.0.1, once at an old compatibility date and once at the
//   binary's own (the newest it accepts).
// - Vercel's edge runtime (the `edge-runtime` npm package, the sandbox `next dev` and Vercel's
//   tests run edge functions in): the same Worker bundled with the edge-light condition, wasm code
//   generation off as in production, the .wasm compiled by the host and handed in as Next.js's
//   sandbox does, which makes it a WebAssembly.Module of another realm.
// Each serves /attention, /decoder and /limits (test/edge/worker.js); the answers must equal the
// reference engine's (test/edge/cases.js), with no module passed to createEngine by hand.
// Prints what it checked; exits 1 on any difference.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as esbuild from 'esbuild';
import * as qkv from 'qkv';
import { attention, decoder, differences } from './cases.js';

const root = new URL('../../', import.meta.url).pathname;
const tools = join(root, '.ci/tools/node_modules');
const fixture = join(root, 'test/fixtures/decoders/qwen3');
const expected = JSON.parse(readFileSync(join(fixture, 'expected.json'), 'utf8'));
const files = { 'config.json': readFileSync(join(fixture, 'config.json')), 'model.safetensors': readFileSync(join(fixture, 'model.safetensors')) };
/** An old compatibility date, and the newest the binary accepts (its own version's date). */
const OLD_DATE = '2022-01-31';

// What the Worker must answer: the same cases on the reference engine.
const want = {
  attention: attention(qkv, qkv.reference),
  decoder: await decoder(qkv, qkv.reference, files, expected.prompt),
};
const failures = [];
if (want.decoder.tokens.join() !== expected.greedy.join()) {
  failures.push(`reference: greedy tokens ${want.decoder.tokens} are not transformers' ${expected.greedy}`);
}

/** Asks a served Worker every question and checks its answers. */
async function check(base, label) {
  const get = async (path) => {
    const response = await fetch(new URL(path, base));
    const text = await response.text();
    if (!response.ok) throw new Error(`${label} GET ${path}: ${response.status} ${text}`);
    return JSON.parse(text);
  };
  const got = await get('/attention');
  const problems = [
    ...differences(got, want.attention, `${label} /attention`),
    ...differences(await get(`/decoder?prompt=${expected.prompt.join(',')}`), want.decoder, `${label} /decoder`),
  ];
  if (got.info.simd !== 'simd' || got.info.threads !== 1) problems.push(`${label}: engine.info is ${JSON.stringify(got.info)}, not the plain SIMD build on one thread`);
  const limits = await get('/limits');
  if (!/^RangeError: .*at most 134217728 \(128 MiB/.test(limits.overIsolate)) problems.push(`${label}: maxMemoryBytes over 128 MiB gave ${limits.overIsolate}`);
  if (!/^RangeError: .*over the engine's limit of 100663296 bytes/.test(limits.overLimit)) problems.push(`${label}: a 128 MiB tensor gave ${limits.overLimit}`);
  failures.push(...problems);
  console.log(`${label}: engine ${JSON.stringify(got.info)}; attention (${Object.keys(want.attention).join(', ')}), the decoder's logits and tokens [${want.decoder.tokens}], the memory limits: ${problems.length ? `${problems.length} differences` : 'as the reference'}`);
}

/** A port free on 127.0.0.1 now. */
const freePort = () => new Promise((resolve, reject) => {
  const server = createServer().listen(0, '127.0.0.1', () => {
    const { port } = server.address();
    server.close(() => resolve(port));
  }).on('error', reject);
});

/** Polls until the server answers (workerd takes a moment to start). */
async function ready(base, child) {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`workerd exited with ${child.exitCode}`);
    try {
      await fetch(new URL('/ready', base));
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error('workerd did not answer within 10 s');
}

/** esbuild options shared by both bundles: the Worker resolves qkv through the package's exports. */
function bundleOptions(conditions, plugin) {
  return {
    entryPoints: [join(root, 'test/edge/worker.js')],
    bundle: true,
    write: false,
    platform: 'neutral',
    mainFields: ['browser', 'module', 'main'],
    conditions,
    target: 'es2022',
    logLevel: 'error',
    plugins: [plugin],
  };
}

// ---- workerd
{
  const dir = mkdtempSync(join(tmpdir(), 'qkv-workerd-'));
  const wasmFiles = new Set();
  const modules = {
    name: 'workerd-modules',
    setup(build) {
      // as Wrangler's CompiledWasm rule: the .wasm becomes a module of the Worker, imported by name
      build.onResolve({ filter: /\.wasm\?module$/ }, (args) => {
        wasmFiles.add(join(args.resolveDir, args.path.replace(/\?module$/, '')));
        return { path: 'qkv.wasm', external: true };
      });
      build.onResolve({ filter: /^fixture:/ }, (args) => ({ path: args.path.slice('fixture:'.length), external: true }));
    },
  };
  const { outputFiles } = await esbuild.build({ ...bundleOptions(['workerd', 'worker', 'browser'], modules), format: 'esm' });
  if (wasmFiles.size !== 1) throw new Error(`the Worker bundle imports ${wasmFiles.size} .wasm modules, expected build/qkv.wasm alone`);
  writeFileSync(join(dir, 'worker.js'), outputFiles[0].contents);
  writeFileSync(join(dir, 'qkv.wasm'), readFileSync([...wasmFiles][0]));
  writeFileSync(join(dir, 'config.json'), files['config.json']);
  writeFileSync(join(dir, 'model.safetensors'), files['model.safetensors']);
  const workerd = join(tools, '.bin/workerd');
  const version = await new Promise((resolve) => {
    const p = spawn(workerd, ['--version']);
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.on('close', () => resolve(out.trim()));
  });
  const current = version.split(' ')[1];
  for (const date of [OLD_DATE, current]) {
    const port = await freePort();
    writeFileSync(join(dir, 'config.capnp'), `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [(name = "main", worker = .worker)],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "main")],
);
const worker :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "worker.js"),
    (name = "qkv.wasm", wasm = embed "qkv.wasm"),
    (name = "config.json", text = embed "config.json"),
    (name = "model.safetensors", data = embed "model.safetensors"),
  ],
  compatibilityDate = "${date}",
);
`);
    const child = spawn(workerd, ['serve', join(dir, 'config.capnp')], { stdio: ['ignore', 'inherit', 'inherit'] });
    try {
      const base = `http://127.0.0.1:${port}`;
      await ready(base, child);
      await check(base, `${version}, compatibility date ${date}`);
    } catch (error) {
      failures.push(`${version}, compatibility date ${date}: ${error?.stack ?? error}`);
    } finally {
      child.kill();
      await new Promise((r) => (child.exitCode !== null ? r() : child.on('exit', r)));
    }
  }
  rmSync(dir, { recursive: true, force: true });
}

// ---- Vercel's edge runtime
{
  const { EdgeRuntime, runServer } = await import(join(tools, 'edge-runtime/dist/index.js'));
  const { version } = JSON.parse(readFileSync(join(tools, 'edge-runtime/package.json'), 'utf8'));
  let wasmFile = null;
  const modules = {
    name: 'edge-modules',
    setup(build) {
      // as Next.js's middleware wasm loader: the import reads a global the sandbox defines
      build.onResolve({ filter: /\.wasm\?module$/ }, (args) => {
        wasmFile = join(args.resolveDir, args.path.replace(/\?module$/, ''));
        return { path: 'qkv.wasm', namespace: 'wasm-global' };
      });
      build.onLoad({ filter: /.*/, namespace: 'wasm-global' }, () => ({ contents: 'export default globalThis.wasm_qkv;', loader: 'js' }));
      build.onResolve({ filter: /^fixture:/ }, (args) => ({ path: join(fixture, args.path.slice('fixture:'.length)), namespace: 'fixture' }));
      build.onLoad({ filter: /.*/, namespace: 'fixture' }, (args) => ({ contents: readFileSync(args.path), loader: args.path.endsWith('.json') ? 'text' : 'binary' }));
    },
  };
  const entry = 'import { handle } from "./worker.js"; addEventListener("fetch", (event) => event.respondWith(handle(event.request)));';
  const { outputFiles } = await esbuild.build({
    ...bundleOptions(['edge-light', 'worker', 'browser'], modules),
    entryPoints: undefined,
    stdin: { contents: entry, resolveDir: join(root, 'test/edge'), loader: 'js' },
    format: 'iife',
  });
  // compiled here, in Node's realm, as Next.js's sandbox compiles an edge function's wasm imports
  const module = await WebAssembly.compile(readFileSync(wasmFile));
  const runtime = new EdgeRuntime({
    codeGeneration: { strings: false, wasm: false }, // as on Vercel: no eval, no WebAssembly.compile
    extend: (context) => Object.assign(context, { wasm_qkv: module }),
    initialCode: outputFiles[0].text,
  });
  const server = await runServer({ runtime, host: '127.0.0.1', port: await freePort() });
  try {
    await check(server.url, `edge-runtime ${version}`);
  } catch (error) {
    failures.push(`edge-runtime ${version}: ${error?.stack ?? error}`);
  } finally {
    await server.close();
  }
}

for (const failure of failures) console.log(`FAIL ${failure}`);
console.log(failures.length ? `${failures.length} failed` : 'edge runtimes: all answers equal the reference engine\'s');
process.exit(failures.length ? 1 : 0);
