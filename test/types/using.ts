// `using` with qkv's objects, as docs/RUNTIMES.md's "Serverless and edge" shows it: compiled against the
// built declarations by npm run test:types under every tsconfig here, with lib ES2022 and @types/node
// (whose declarations include Symbol.dispose and Disposable) and, in tsconfig.disposable.json, with
// TypeScript's own lib esnext.disposable and no @types/node.
import { createEngine, type Decoder, type KVSequence, loadDecoder, reference, tensor } from 'qkv';

declare const files: Record<string, Uint8Array>;
{
  using engine = await createEngine();
  using x = engine.tensor([4, 8]);
  using linear = engine.createLinear(tensor(new Float32Array(8 * 8), [8, 8]));
  using cache = engine.createKVCache({ batch: 1, kvHeads: 2, headDim: 4, capacity: 16 });
  using pool = engine.createKVPool({ kvHeads: 2, headDim: 4, blocks: 16, blockSize: 4 });
  using sequence: KVSequence = pool.sequence();
  using fork = sequence.fork();
  using decoder: Decoder = await loadDecoder({ files }, { engine });
  using turn = decoder.sequence();
  using ref = reference;
  linear.forward(x);
  console.log(cache.length, fork.length, turn.length, ref.name);
}
{
  // @ts-expect-error a tensor holds no engine memory: it is not disposable
  using plain = tensor([1, 2], [2]);
  console.log(plain);
}
