// `qkv serve <checkpoint> [--host 127.0.0.1] [--port 8080] [--weights float32|float16|int8|int4]
// [--threads N|auto] [--max-waiting 256] [--model-name NAME] [--max-tokens N] [--max-batch-tokens 512]
// [--max-sequences 64]`: loads the decoder, serves it (./server.ts) until SIGTERM or SIGINT, then stops
// accepting, lets running streams finish (10 s at most) and exits 0. bin/qkv.js calls main().
import { basename, resolve } from 'node:path';
import { loadDecoder } from '../models/load.js';
import { createEngine } from '../wasm/engine.js';
import { createServer } from './server.js';
import { loadText } from './text.js';

const USAGE = `usage: qkv serve <checkpoint-folder> [--host 127.0.0.1] [--port 8080] [--weights float32|float16|int8|int4]
       [--threads N|auto] [--max-waiting 256] [--model-name NAME] [--max-tokens 8192] [--max-batch-tokens 512] [--max-sequences 64]`;

const FLAGS = new Set(['host', 'port', 'weights', 'threads', 'max-waiting', 'model-name', 'max-tokens', 'max-batch-tokens', 'max-sequences']);

/** Parses `serve` arguments; throws an Error naming what is wrong. */
export function parseServeArgs(args: readonly string[]): { checkpoint: string; flags: Map<string, string> } {
  const flags = new Map<string, string>();
  let checkpoint: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a.startsWith('--')) {
      const [name, inline] = a.slice(2).split('=', 2);
      if (!FLAGS.has(name)) throw new Error(`unknown option --${name}`);
      const value = inline ?? args[++i];
      if (value === undefined) throw new Error(`--${name} needs a value`);
      flags.set(name, value);
    } else if (checkpoint === undefined) checkpoint = a;
    else throw new Error(`unexpected argument ${a}`);
  }
  if (!checkpoint) throw new Error('the checkpoint folder is missing');
  return { checkpoint, flags };
}

function integer(flags: Map<string, string>, name: string, fallback: number, min = 1): number {
  const v = flags.get(name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got ${v}`);
  return n;
}

/** Runs the command line; resolves once the server listens (it then runs until a signal). */
export async function main(argv: readonly string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command !== 'serve' || rest.includes('--help') || rest.includes('-h')) {
    console.error(USAGE);
    process.exit(command === undefined || command === 'serve' || command === '--help' ? 0 : 2);
  }
  let parsed: ReturnType<typeof parseServeArgs>;
  try {
    parsed = parseServeArgs(rest);
  } catch (error) {
    console.error(`qkv serve: ${(error as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  const { checkpoint, flags } = parsed;
  const threadsFlag = flags.get('threads') ?? '1';
  const threads = threadsFlag === 'auto' ? 'auto' : integer(flags, 'threads', 1);
  // absent: loadDecoder's default (float32, a GGUF's Q8_0 and Q4_0 tensors as stored)
  const weights = flags.get('weights') as 'float32' | 'float16' | 'int8' | 'int4' | undefined;
  if (weights !== undefined && !['float32', 'float16', 'int8', 'int4'].includes(weights)) throw new Error(`--weights must be float32, float16, int8 or int4, got ${weights}`);
  const engine = await createEngine({ threads });
  const t0 = performance.now();
  const decoder = await loadDecoder(checkpoint, {
    engine, weights, maxTokens: integer(flags, 'max-tokens', 8192),
    // progress only where it is seen (a terminal): a log file gets the summary line alone
    onProgress: process.stderr.isTTY ? ({ loadedBytes, totalBytes }) => process.stderr.write(`\rloading ${(loadedBytes / 1e6).toFixed(0)} / ${(totalBytes / 1e6).toFixed(0)} MB`) : undefined,
  });
  const text = await loadText(checkpoint);
  const modelName = flags.get('model-name') ?? basename(resolve(checkpoint));
  const server = createServer({
    decoder, modelName, text, maxWaiting: integer(flags, 'max-waiting', 256, 0),
    batcher: { maxBatchTokens: integer(flags, 'max-batch-tokens', 512), maxSequences: integer(flags, 'max-sequences', 64) },
  });
  const { host, port } = await server.listen(integer(flags, 'port', 8080, 0), flags.get('host') ?? '127.0.0.1');
  const c = decoder.config;
  console.error(`\r${c.architecture} ${modelName}: ${c.numLayers} layers, ${(decoder.bytes / 1e9).toFixed(2)} GB, loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s (${engine.info.simd}, ${engine.info.threads} thread${engine.info.threads > 1 ? 's' : ''}${text ? '' : ', no tokenizer.json: token ids only'})`);
  console.log(`listening on http://${host}:${port}`);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.error(`${signal}: finishing running streams (10 s at most)`);
    await server.shutdown(10_000);
    decoder.dispose();
    engine.dispose();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
