// qkv's declarations in a program with lib ES2022 and DOM only: no @types/node and no lib
// esnext.disposable, so nothing declares Symbol.dispose but qkv's own declarations
// (tsconfig.es2022.json, skipLibCheck off): [Symbol.dispose] is typed and callable by hand.
import { createEngine, type Engine } from 'qkv';

const engine: Engine = await createEngine();
const pool = engine.createKVPool({ kvHeads: 1, headDim: 4, blocks: 4, blockSize: 2 });
pool.sequence()[Symbol.dispose]();
pool[Symbol.dispose]();
engine[Symbol.dispose]();
engine.dispose(); // the method stays
