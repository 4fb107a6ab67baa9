// The checkpoint reader: safetensors files written here, read from a folder on disk, a file: URL, a
// page's files ({ files }: Blobs and bytes) and an HTTP server with and without Range support. Values
// are compared bit for bit (-0, subnormals, ±Inf, NaN payloads); every malformed file is an Error that
// names the file and the tensor.
import { mkdir, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CheckpointFile, type CheckpointSource, type CheckpointTensor, openCheckpoint } from '../../src/models/checkpoint.js';
import { convert, readTensor } from '../../src/models/safetensors.js';
import { bf16ToNumber, concat, encode, halfToNumber, raw, type Served, safetensors, serveFolder } from './safetensorsFixtures.js';

let root: string;
let folders = 0;
const servers: Served[] = [];
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'qkv-checkpoint-'));
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await rm(root, { recursive: true, force: true });
});

type Files = Record<string, Uint8Array | string>;
const bytesOf = (v: Uint8Array | string) => (typeof v === 'string' ? new TextEncoder().encode(v) : v);

async function writeFolder(files: Files): Promise<string> {
  const dir = join(root, `f${folders++}`);
  await mkdir(dir);
  for (const [name, value] of Object.entries(files)) await writeFile(join(dir, name), bytesOf(value));
  return dir;
}

const kinds = ['path', 'file: URL', 'Blob', 'Uint8Array', 'ArrayBuffer', 'http', 'http/', 'http without Range'] as const;
type Kind = (typeof kinds)[number];

/** The folder `files` as a source of this kind; `dir` when it is on disk (served or not). */
async function place(kind: Kind, files: Files): Promise<{ source: CheckpointSource; dir?: string; served?: Served }> {
  if (kind === 'Blob' || kind === 'Uint8Array' || kind === 'ArrayBuffer') {
    const map: Record<string, Blob | ArrayBuffer | Uint8Array> = {};
    for (const [name, value] of Object.entries(files)) {
      const b = bytesOf(value);
      map[name] = kind === 'Blob' ? new Blob([b.slice()]) : kind === 'ArrayBuffer' ? b.slice().buffer : b;
    }
    return { source: { files: map } };
  }
  const dir = await writeFolder(files);
  if (kind === 'path') return { source: dir, dir };
  if (kind === 'file: URL') return { source: pathToFileURL(dir), dir };
  const served = await serveFolder(dir, { range: kind !== 'http without Range' });
  servers.push(served);
  return { source: kind === 'http/' ? new URL(`${served.url}/`) : served.url, dir, served };
}

// ---------------------------------------------------------------------------------------------------
// values: every special float, in each dtype

const F32 = [1.5, -0, 0, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.NaN, 1e-45, -1.1754942e-38, 3.4028234663852886e38, -2.5];
// 0, -0, smallest and largest subnormals, smallest normal, 1, -2, 65504, ±Inf, quiet NaN, a NaN with payload, 1/3-ish
const F16 = [0x0000, 0x8000, 0x0001, 0x03ff, 0x8001, 0x0400, 0x3c00, 0xc000, 0x7bff, 0x7c00, 0xfc00, 0x7e00, 0x7c01, 0x3555];
// 0, -0, a subnormal, 1, -3, ±Inf, NaN, the largest finite, the smallest normal
const BF16 = [0x0000, 0x8000, 0x0001, 0x3f80, 0xc040, 0x7f80, 0xff80, 0x7fc0, 0x7f7f, 0x0080];

/** The float32 bits a reader must produce for each dtype's stored value. */
function expectedBits(dtype: 'F32' | 'F16' | 'BF16', data: ArrayLike<number>): Uint32Array {
  const out = new Uint32Array(data.length), f = new Float32Array(1), bits = new Uint32Array(f.buffer);
  for (let i = 0; i < data.length; i++) {
    if (dtype === 'F32') f[0] = data[i];
    else if (dtype === 'BF16') bits[0] = data[i] << 16;
    else {
      const h = data[i];
      if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) bits[0] = ((h & 0x8000) << 16) | 0x7f800000 | ((h & 0x3ff) << 13);
      else f[0] = halfToNumber(h);
    }
    out[i] = bits[0];
  }
  return out;
}

function expectSameBits(actual: Float32Array, expected: Uint32Array, what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  const got = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  for (let i = 0; i < expected.length; i++) {
    if (got[i] !== expected[i]) {
      throw new Error(`${what}: element ${i}: got bits 0x${got[i].toString(16)} (${actual[i]}), expected 0x${expected[i].toString(16)}`);
    }
  }
}

const config = { architectures: ['LlamaForCausalLM'], hidden_size: 4 };
const single = (): Files => ({
  'config.json': JSON.stringify(config),
  'tokenizer.json': '{"model":{"type":"BPE"}}',
  'model.safetensors': safetensors(
    {
      'model.embed_tokens.weight': { dtype: 'F32', shape: [2, 5], data: F32 },
      'model.layers.0.mlp.up_proj.weight': { dtype: 'F16', shape: [14], data: F16 },
      'model.norm.weight': { dtype: 'BF16', shape: [2, 5], data: BF16 },
      empty: { dtype: 'F32', shape: [0, 3], data: [] },
      scalar: { dtype: 'F16', shape: [], data: [0x3c00] },
    },
    { metadata: { format: 'pt' } },
  ),
});
const expectedSingle: [string, 'F32' | 'F16' | 'BF16', number[], number[]][] = [
  ['model.embed_tokens.weight', 'F32', [2, 5], F32],
  ['model.layers.0.mlp.up_proj.weight', 'F16', [14], F16],
  ['model.norm.weight', 'BF16', [2, 5], BF16],
  ['empty', 'F32', [0, 3], []],
  ['scalar', 'F16', [], [0x3c00]],
];

const shard1 = 'model-00001-of-00002.safetensors', shard2 = 'model-00002-of-00002.safetensors';
const INDEX = 'model.safetensors.index.json';
const sharded = (): Files => ({
  'config.json': JSON.stringify(config),
  [INDEX]: JSON.stringify({
    metadata: { total_size: 64 },
    weight_map: { 'model.embed_tokens.weight': shard1, 'model.layers.0.mlp.up_proj.weight': shard1, 'model.norm.weight': shard2 },
  }),
  [shard1]: safetensors({
    'model.embed_tokens.weight': { dtype: 'F32', shape: [2, 5], data: F32 },
    'model.layers.0.mlp.up_proj.weight': { dtype: 'F16', shape: [14], data: F16 },
  }),
  [shard2]: safetensors({ 'model.norm.weight': { dtype: 'BF16', shape: [2, 5], data: BF16 } }),
});

describe.each(kinds)('a checkpoint from %s', (kind) => {
  it('reads config.json, the header table and every tensor bit for bit', async () => {
    const { source } = await place(kind, single());
    const cp = await openCheckpoint(source);
    try {
      expect(cp.format).toBe('safetensors');
      expect(cp.config).toEqual(config);
      expect([...cp.tensors.keys()]).toEqual(expectedSingle.map((e) => e[0]));
      let total = 0;
      for (const [name, dtype, shape, data] of expectedSingle) {
        const t = cp.tensors.get(name)!;
        expect(t).toMatchObject({ name, dtype, shape, file: 'model.safetensors', byteLength: data.length * (dtype === 'F32' ? 4 : 2) });
        total += t.byteLength;
        expectSameBits(await cp.read(name), expectedBits(dtype, data), `${kind} ${name}`);
      }
      expect(cp.totalBytes).toBe(total);
    } finally {
      await cp.close();
    }
  });

  it('reads into a given Float32Array, and refuses one of the wrong length or type', async () => {
    const { source } = await place(kind, single());
    const cp = await openCheckpoint(source);
    const into = new Float32Array(10).fill(7);
    expect(await cp.read('model.norm.weight', into)).toBe(into);
    expectSameBits(into, expectedBits('BF16', BF16), 'into');
    // a view into a bigger buffer, at an offset
    const big = new Float32Array(40), view = big.subarray(3, 17);
    expect(await cp.read('model.layers.0.mlp.up_proj.weight', view)).toBe(view);
    expectSameBits(view, expectedBits('F16', F16), 'view');
    expect(big[2]).toBe(0);
    expect(big[17]).toBe(0);
    await expect(cp.read('model.norm.weight', new Float32Array(9))).rejects.toThrow(RangeError);
    await expect(cp.read('model.norm.weight', new Float32Array(9))).rejects.toThrow(/into has 9 elements, but tensor "model.norm.weight" of shape \[2, 5\] has 10/);
    await expect(cp.read('model.norm.weight', new Float64Array(10) as unknown as Float32Array)).rejects.toThrow(TypeError);
    await expect(cp.read('nope')).rejects.toThrow(/has no tensor "nope"/);
    await cp.close();
  });

  it('reads a 2-D tensor rows at a time (readRows): the pieces are its rows, and progress counts it once', async () => {
    const { source } = await place(kind, single());
    const seen: number[] = [];
    const cp = await openCheckpoint(source, { onProgress: (p) => seen.push(p.loadedBytes) });
    const readRows = cp.readRows!.bind(cp);
    for (const [name, dtype, data] of [['model.embed_tokens.weight', 'F32', F32], ['model.norm.weight', 'BF16', BF16]] as const) {
      const first = await readRows(name, 0, 1);
      const into = new Float32Array(5).fill(7);
      expect(await readRows(name, 1, 2, into)).toBe(into);
      expectSameBits(Float32Array.from([...first, ...into]), expectedBits(dtype, data), `${kind} ${name} by rows`);
      expect((await readRows(name, 2, 2)).length).toBe(0);
    }
    expect((await readRows('empty', 0, 0)).length).toBe(0);
    // each 2-D tensor counted once, whole, after its last row; then read whole: not again
    const bytes = (name: string) => cp.tensors.get(name)!.byteLength;
    expect(seen.at(-1)).toBe(bytes('model.embed_tokens.weight') + bytes('model.norm.weight'));
    for (const name of cp.tensors.keys()) await cp.read(name);
    expect(seen.at(-1)).toBe(cp.totalBytes);
    await expect(readRows('model.norm.weight', 1, 3)).rejects.toThrow(/rows \[1, 3\) are not a range of tensor "model.norm.weight"'s 2 rows/);
    await expect(readRows('model.norm.weight', -1, 1)).rejects.toThrow(RangeError);
    await expect(readRows('model.norm.weight', 0.5, 1)).rejects.toThrow(RangeError);
    await expect(readRows('model.layers.0.mlp.up_proj.weight', 0, 1)).rejects.toThrow(TypeError);
    await expect(readRows('model.norm.weight', 0, 1, new Float32Array(4))).rejects.toThrow(RangeError);
    await expect(readRows('nope', 0, 1)).rejects.toThrow(/has no tensor "nope"/);
    await cp.close();
    await expect(readRows('model.norm.weight', 0, 1)).rejects.toThrow(/closed/);
  });

  it('reads a sharded checkpoint through its index', async () => {
    const { source } = await place(kind, sharded());
    const cp = await openCheckpoint(source);
    expect(cp.tensors.get('model.embed_tokens.weight')!.file).toBe(shard1);
    expect(cp.tensors.get('model.norm.weight')!.file).toBe(shard2);
    expectSameBits(await cp.read('model.norm.weight'), expectedBits('BF16', BF16), 'shard 2');
    expectSameBits(await cp.read('model.embed_tokens.weight'), expectedBits('F32', F32), 'shard 1');
    await cp.close();
  });

  it('reads other files as text, null when absent', async () => {
    const { source } = await place(kind, single());
    const cp = await openCheckpoint(source);
    expect(await cp.text('tokenizer.json')).toBe('{"model":{"type":"BPE"}}');
    expect(await cp.text('generation_config.json')).toBeNull();
    await expect(cp.text('../secret.json')).rejects.toThrow(TypeError);
    await cp.close();
  });

  it('reports progress after each tensor, each counted once', async () => {
    const { source } = await place(kind, single());
    const seen: { loadedBytes: number; totalBytes: number }[] = [];
    const cp = await openCheckpoint(source, { onProgress: (p) => seen.push(p) });
    for (const name of cp.tensors.keys()) await cp.read(name);
    await cp.read('model.norm.weight');
    const sizes = [...cp.tensors.values()].map((t) => t.byteLength);
    const cumulative = sizes.map((_, i) => sizes.slice(0, i + 1).reduce((a, b) => a + b, 0));
    expect(seen).toEqual([...cumulative, cumulative.at(-1)!].map((loadedBytes) => ({ loadedBytes, totalBytes: cp.totalBytes })));
    await cp.close();
  });

  it('closes: later reads throw, closing twice is harmless', async () => {
    const { source } = await place(kind, single());
    const cp = await openCheckpoint(source);
    await cp.read('scalar');
    await cp.close();
    await cp.close();
    await expect(cp.read('scalar')).rejects.toThrow(/closed/);
    await expect(cp.text('tokenizer.json')).rejects.toThrow(/closed/);
  });

  it('rejects with the signal reason once aborted, before opening and before a read', async () => {
    const { source } = await place(kind, single());
    const reason = new Error('stop');
    await expect(openCheckpoint(source, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    const controller = new AbortController();
    const cp = await openCheckpoint(source, { signal: controller.signal });
    expect((await cp.read('scalar'))[0]).toBe(1);
    controller.abort();
    await expect(cp.read('scalar')).rejects.toMatchObject({ name: 'AbortError' });
    await cp.close();
  });
});

// ---------------------------------------------------------------------------------------------------
// malformed checkpoints: every one an Error naming the file and the tensor

const good = safetensors({ a: { dtype: 'F32', shape: [2], data: [1, 2] } });
const cfg = JSON.stringify(config);
const st = (file: Uint8Array): Files => ({ 'config.json': cfg, 'model.safetensors': file });
const f32x2 = new Uint8Array(8);
const malformed: [string, Files, RegExp][] = [
  ['no config.json', { 'model.safetensors': good }, /^qkv: config\.json: not found in /],
  ['config.json not JSON', { 'config.json': '{"a":', 'model.safetensors': good }, /^qkv: config\.json: not valid JSON/],
  ['config.json not an object', { 'config.json': '[1]', 'model.safetensors': good }, /^qkv: config\.json: not a JSON object/],
  ['no weights', { 'config.json': cfg }, /has neither model\.safetensors nor model\.safetensors\.index\.json/],
  ['a file shorter than 8 bytes', st(new Uint8Array(5)), /^qkv: model\.safetensors: the file is 5 bytes long, too short/],
  ['a header length past the end', st(raw('{}', new Uint8Array(0), 1000n)), /^qkv: model\.safetensors: header length 1000 runs past the end of the file \(10 bytes\)/],
  ['an absurd header length', st(raw('{}', new Uint8Array(0), 2n ** 60n)), /^qkv: model\.safetensors: header length 1152921504606846976 is absurd/],
  ['a header that is not JSON', st(raw('{"a": {"dtype": ')), /^qkv: model\.safetensors: the header is not valid JSON/],
  ['a header that is not UTF-8', st(raw('{}', new Uint8Array(0)).map((b, i) => (i === 8 ? 0xff : b))), /^qkv: model\.safetensors: the header is not valid JSON/],
  ['a header that is not an object', st(raw('[1, 2]')), /^qkv: model\.safetensors: the header is not a JSON object/],
  ['__metadata__ not an object', st(raw({ __metadata__: 3 })), /^qkv: model\.safetensors: "__metadata__" is not an object/],
  ['an entry that is not an object', st(raw({ t: [1] })), /^qkv: model\.safetensors: tensor "t": its entry is not an object/],
  ['an entry without dtype', st(raw({ t: { shape: [2], data_offsets: [0, 8] } }, f32x2)), /^qkv: model\.safetensors: tensor "t": has no dtype/],
  ['an entry without shape', st(raw({ t: { dtype: 'F32', data_offsets: [0, 8] } }, f32x2)), /^qkv: model\.safetensors: tensor "t": has no shape/],
  ['an entry without data_offsets', st(raw({ t: { dtype: 'F32', shape: [2] } }, f32x2)), /^qkv: model\.safetensors: tensor "t": has no data_offsets/],
  ['a bad shape', st(raw({ t: { dtype: 'F32', shape: [2, -1], data_offsets: [0, 8] } }, f32x2)), /tensor "t": shape \[2,-1\] is not a list of non-negative integers/],
  ['bad data_offsets', st(raw({ t: { dtype: 'F32', shape: [2], data_offsets: [0] } }, f32x2)), /tensor "t": data_offsets \[0\] is not \[begin, end\]/],
  [
    'an unsupported dtype',
    st(raw({ t: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, f32x2)),
    /^qkv: model\.safetensors: tensor "t": dtype I64 is not supported \(supported: F32, F16, BF16\)/,
  ],
  ['offsets out of order', st(raw({ t: { dtype: 'F32', shape: [1], data_offsets: [8, 4] } }, f32x2)), /tensor "t": data_offsets \[8, 4\] are out of order/],
  [
    'a size that does not match the shape',
    st(raw({ t: { dtype: 'F16', shape: [3], data_offsets: [0, 8] } }, f32x2)),
    /^qkv: model\.safetensors: tensor "t": data_offsets \[0, 8\] hold 8 bytes, but shape \[3\] of F16 takes 6/,
  ],
  [
    'offsets past the end of the file',
    st(raw({ 'model.layers.0.mlp.up_proj.weight': { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, f32x2)),
    /^qkv: model\.safetensors: tensor "model\.layers\.0\.mlp\.up_proj\.weight": data_offsets \[0, 16\] run past the end of the file \(\d+ bytes\)/,
  ],
  [
    'overlapping tensors',
    st(raw({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, new Uint8Array(12))),
    /^qkv: model\.safetensors: tensor "b": data_offsets \[4, 12\] overlap those of tensor "a" \[0, 8\]/,
  ],
  ['an index that is not JSON', { 'config.json': cfg, [INDEX]: '{', [shard1]: good }, /^qkv: model\.safetensors\.index\.json: not valid JSON/],
  ['an index without weight_map', { 'config.json': cfg, [INDEX]: '{"metadata":{}}', [shard1]: good }, /^qkv: model\.safetensors\.index\.json: has no "weight_map"/],
  [
    'an index naming a shard outside the folder',
    { 'config.json': cfg, [INDEX]: JSON.stringify({ weight_map: { a: '../model.safetensors' } }) },
    /^qkv: model\.safetensors\.index\.json: weight_map\["a"\]: shard "\.\.\/model\.safetensors" must name a file inside/,
  ],
  [
    'an index naming a missing shard',
    { 'config.json': cfg, [INDEX]: JSON.stringify({ weight_map: { a: shard1, b: shard2 } }), [shard1]: good },
    /^qkv: model\.safetensors\.index\.json: names shard "model-00002-of-00002\.safetensors" \(for tensor "b" among others\), which is not in /,
  ],
  [
    'a tensor the index names but the shard lacks',
    { 'config.json': cfg, [INDEX]: JSON.stringify({ weight_map: { a: shard1, c: shard1 } }), [shard1]: good },
    /^qkv: model-00001-of-00002\.safetensors: tensor "c": model\.safetensors\.index\.json puts it in this file, but its header does not have it/,
  ],
  [
    'a tensor in another shard than the index says',
    {
      'config.json': cfg,
      [INDEX]: JSON.stringify({ weight_map: { a: shard2, b: shard1, z: shard2 } }),
      [shard1]: safetensors({ a: { dtype: 'F32', shape: [1], data: [1] }, b: { dtype: 'F32', shape: [1], data: [1] } }),
      [shard2]: safetensors({ z: { dtype: 'F32', shape: [1], data: [1] } }),
    },
    /^qkv: model-00002-of-00002\.safetensors: tensor "a": .* does not have it \(it is in model-00001-of-00002\.safetensors\)/,
  ],
  [
    'a tensor in two shards',
    { 'config.json': cfg, [INDEX]: JSON.stringify({ weight_map: { a: shard1 } }), [shard1]: good, [shard2]: good },
    /^qkv: model-00002-of-00002\.safetensors: tensor "a" is also in model-00001-of-00002\.safetensors/,
  ],
];
// the last case needs shard 2 opened: name it in the index too
malformed.at(-1)![1][INDEX] = JSON.stringify({ weight_map: { a: shard1, x: shard2 } });

describe.each(['path', 'Uint8Array', 'http'] as const)('a malformed checkpoint from %s', (kind) => {
  it.each(malformed)('%s', async (_, files, message) => {
    const { source } = await place(kind, files);
    const error = await openCheckpoint(source).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(message);
  });
});

describe('sources', () => {
  it('refuses what is not a source, a missing folder, a file', async () => {
    await expect(openCheckpoint(42 as unknown as CheckpointSource)).rejects.toThrow(TypeError);
    await expect(openCheckpoint({ files: { 'config.json': 'text' } } as unknown as CheckpointSource)).rejects.toThrow(/files\["config\.json"\] must be a Blob/);
    await expect(openCheckpoint(join(root, 'no-such-folder'))).rejects.toThrow(/no-such-folder: no such folder/);
    const dir = await writeFolder(single());
    await expect(openCheckpoint(join(dir, 'config.json'))).rejects.toThrow(/config\.json: not a folder/);
    await expect(openCheckpoint('ftp://example.com/model')).rejects.toThrow(/ftp: URLs/);
  });

  it('over HTTP with Range: two small requests per header, one exact range per tensor', async () => {
    const { source, served } = await place('http', single());
    const cp = await openCheckpoint(source);
    const requests = served!.requests;
    const weights = () => requests.filter((r) => r.path === 'model.safetensors').map((r) => r.range);
    const headerLength = new DataView(bytesOf(single()['model.safetensors']).buffer).getUint32(0, true);
    expect(weights()).toEqual(['bytes=0-7', `bytes=8-${8 + headerLength - 1}`]);
    const t = cp.tensors.get('model.norm.weight')!;
    await cp.read(t.name);
    expect(weights().at(-1)).toBe(`bytes=${t.offset}-${t.offset + t.byteLength - 1}`);
    await cp.close();
  });

  it('over HTTP without Range: each file downloaded once and kept', async () => {
    const { source, served } = await place('http without Range', sharded());
    const cp = await openCheckpoint(source);
    for (const name of cp.tensors.keys()) await cp.read(name);
    const paths = served!.requests.map((r) => r.path).filter((p) => p.endsWith('.safetensors'));
    expect(paths.sort()).toEqual(['model.safetensors', shard1, shard2].sort()); // model.safetensors: a 404
    await cp.close();
  });

  it('over HTTP, an abort during a request rejects with the signal reason', async () => {
    let slow = false;
    const dir = await writeFolder(single());
    const served = await serveFolder(dir, { delay: (path, range) => (slow && path === 'model.safetensors' && range !== 'bytes=0-7' ? 2000 : 0) });
    servers.push(served);
    const controller = new AbortController();
    const cp = await openCheckpoint(served.url, { signal: controller.signal });
    slow = true;
    const reading = cp.read('model.embed_tokens.weight');
    setTimeout(() => controller.abort(new Error('user stopped')), 50);
    await expect(reading).rejects.toThrow('user stopped');
    await cp.close();
  });

  it('a file truncated after opening is an Error naming the file and the tensor (disk and HTTP)', async () => {
    for (const kind of ['path', 'http'] as const) {
      const files = single();
      const { source, dir } = await place(kind, files);
      const cp = await openCheckpoint(source);
      const t = cp.tensors.get('model.norm.weight')!;
      await truncate(join(dir!, 'model.safetensors'), t.offset + 4);
      await expect(cp.read(t.name)).rejects.toThrow(
        new RegExp(`^qkv: model\\.safetensors: tensor "model\\.norm\\.weight": the file ends at byte ${t.offset + 4}, before the tensor's data does \\(byte ${t.offset + 20}\\)`),
      );
      await truncate(join(dir!, 'model.safetensors'), 3);
      await expect(cp.read('model.embed_tokens.weight')).rejects.toThrow(/^qkv: model\.safetensors: tensor "model\.embed_tokens\.weight": the file ends at byte/);
      await cp.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------------
// conversion

describe('conversion', () => {
  it('converts every binary16 value exactly (subnormals, ±Inf, NaN payloads)', () => {
    const all = Array.from({ length: 65536 }, (_, h) => h);
    const out = new Float32Array(65536);
    convert('F16', encode('F16', all), out, 0);
    expectSameBits(out, expectedBits('F16', all), 'F16');
    expect(out[0x0001]).toBe(2 ** -24);
    expect(Object.is(out[0x8000], -0)).toBe(true);
    expect(out[0x7c00]).toBe(Number.POSITIVE_INFINITY);
  });

  it('converts bfloat16 as the high half of float32', () => {
    const all = Array.from({ length: 65536 }, (_, h) => h);
    const out = new Float32Array(65536);
    convert('BF16', encode('BF16', all), out, 0);
    expectSameBits(out, expectedBits('BF16', all), 'BF16');
    expect(out[0x3f80]).toBe(1);
    expect(bf16ToNumber(0xc040)).toBe(-3);
  });

  // a reader of bytes in memory with a tiny chunk: many pieces, boundaries inside every pattern
  const fake = (bytes: Uint8Array, chunkBytes: number, fillsInto: boolean): CheckpointFile => ({
    name: 'fake.safetensors',
    size: bytes.length,
    chunkBytes,
    fillsInto,
    async read(begin, end, _signal, into) {
      const part = bytes.subarray(begin, end);
      if (!fillsInto || into === undefined) return part.slice();
      into.set(part);
      return into.subarray(0, part.length);
    },
    close: async () => {},
  });

  it.each([
    ['F16', 37, 10, true],
    ['BF16', 37, 6, false],
    ['F32', 13, 10, true],
    ['F32', 13, 7, false],
    ['F16', 1, 4, true],
  ] as const)('%s: %i elements in chunks of %i bytes (filling: %s)', async (dtype, n, chunk, fillsInto) => {
    const data = Array.from({ length: n }, (_, i) => (dtype === 'F32' ? (i - 6) * 0.37 : (i * 2731 + 5) & 0xffff));
    const bytes = concat([new Uint8Array(3), encode(dtype, data), new Uint8Array(5)]); // an odd offset
    const tensor: CheckpointTensor = { name: 't', dtype, shape: [n], file: 'fake.safetensors', offset: 3, byteLength: n * (dtype === 'F32' ? 4 : 2) };
    const out = new Float32Array(n);
    await readTensor(fake(bytes, chunk, fillsInto), tensor, out);
    expectSameBits(out, expectedBits(dtype, data), `${dtype} chunks of ${chunk}`);
  });

  it('checks the signal between chunks', async () => {
    const controller = new AbortController();
    const file: CheckpointFile = {
      ...fake(new Uint8Array(64), 8, false),
      async read(begin, end) {
        controller.abort(new Error('mid-tensor'));
        return new Uint8Array(end - begin);
      },
    };
    const tensor: CheckpointTensor = { name: 't', dtype: 'F16', shape: [32], file: 'fake.safetensors', offset: 0, byteLength: 64 };
    await expect(readTensor(file, tensor, new Float32Array(32), controller.signal)).rejects.toThrow('mid-tensor');
  });

  it('reads tensors much bigger than the 1 MiB chunk from disk, at an odd offset, into a given array', async () => {
    const n16 = 1_310_727; // 2.5 MiB + 14 bytes of F16
    const n32 = 700_001; // 2.67 MiB of F32
    const halves = new Uint16Array(n16);
    for (let i = 0; i < n16; i++) halves[i] = (i * 7919 + 13) & 0xffff; // every pattern, in a scattered order
    const floats = new Float32Array(n32);
    for (let i = 0; i < n32; i++) floats[i] = Math.sin(i) * 1e3;
    const tensors = {
      small: { dtype: 'BF16', shape: [1], data: [0x3f80] },
      f16: { dtype: 'F16', shape: [n16], data: halves },
      bf16: { dtype: 'BF16', shape: [n16], data: halves },
      f32: { dtype: 'F32', shape: [n32], data: floats },
    };
    // data start 8 + N: make N odd, so that every tensor after `small` starts at an odd offset
    let file = safetensors(tensors);
    if (new DataView(file.buffer).getUint32(0, true) % 2 === 0) file = safetensors(tensors, { pad: 1 });
    const dir = await writeFolder({ 'config.json': cfg, 'model.safetensors': file });
    const cp = await openCheckpoint(dir);
    expect(cp.tensors.get('f16')!.offset % 2).toBe(1);
    const into = new Float32Array(n16);
    expectSameBits(await cp.read('f16', into), expectedBits('F16', halves), 'big F16');
    expectSameBits(await cp.read('bf16', into), expectedBits('BF16', halves), 'big BF16');
    expectSameBits(await cp.read('f32'), expectedBits('F32', floats), 'big F32');
    await cp.close();
  });
});
