// The safetensors reader (https://huggingface.co/docs/safetensors): a checkpoint folder holds config.json
// and either model.safetensors or model.safetensors.index.json, whose "weight_map" names the shard of
// each tensor. Every file is laid out as
//
//   [ N: u64, little-endian ][ N bytes: JSON header ][ data ............................... ]
//   0                        8                       8 + N = data start
//
//   header: { "<tensor>": { "dtype": "F16", "shape": [r, c], "data_offsets": [begin, end] }, …,
//             "__metadata__": { "<key>": "<string>" } }      (offsets from the data start, end exclusive)
//
// Opening reads config.json and each file's first 8 + N bytes and checks everything a later read relies
// on, so that a bad file fails at open with its name and the tensor's. Reading converts one tensor to
// float32 in chunks of the file's chunkBytes, straight into the destination: a big F16 tensor read from
// disk holds its float32 array and one chunk, never its whole raw bytes as well.
import { type Checkpoint, type CheckpointFile, type CheckpointFolder, type CheckpointTensor, type OpenCheckpointOptions, type ReadTarget, targetView, viewOf } from './checkpointTypes.js';

/** Bytes per element of the dtypes read (safetensors' names). */
export const DTYPE_BYTES = { F32: 4, F16: 2, BF16: 2 } as const;
type Dtype = keyof typeof DTYPE_BYTES;
const SUPPORTED = /* @__PURE__ */ Object.keys(DTYPE_BYTES).join(', ');

/** A header longer than this is not a checkpoint's (the official reader's limit is the same 100 MB). */
export const MAX_HEADER_BYTES = 100_000_000;

const SINGLE = 'model.safetensors';
const INDEX = 'model.safetensors.index.json';

/** Opens a safetensors checkpoint in `folder`: config.json, then every weight file's header. */
export async function openSafetensors(folder: CheckpointFolder, options: OpenCheckpointOptions): Promise<Checkpoint> {
  const { signal } = options;
  const config = parseJsonObject('config.json', await folder.text('config.json', signal), folder.where);
  const opened: CheckpointFile[] = [];
  try {
    const weightMap = await openWeightFiles(folder, opened, signal);
    const tensors = new Map<string, CheckpointTensor>();
    for (const file of opened) {
      for (const tensor of await readHeader(file, signal)) {
        const other = tensors.get(tensor.name);
        if (other !== undefined) throw new Error(`qkv: ${file.name}: tensor "${tensor.name}" is also in ${other.file}; a tensor may be in one file only`);
        tensors.set(tensor.name, tensor);
      }
    }
    for (const [name, shard] of weightMap ?? []) {
      const found = tensors.get(name);
      if (found?.file !== shard) {
        throw new Error(`qkv: ${shard}: tensor "${name}": ${INDEX} puts it in this file, but its header does not have it${found === undefined ? '' : ` (it is in ${found.file})`}`);
      }
    }
    return new SafetensorsCheckpoint(config, tensors, folder, new Map(opened.map((f) => [f.name, f])), options);
  } catch (error) {
    await Promise.allSettled(opened.map((f) => f.close()));
    throw error;
  }
}

// Opens model.safetensors, or the index's shards in the order the index first names them; returns the
// index's weight map (null for a single file). Files opened are pushed on `opened` so the caller can close them.
async function openWeightFiles(folder: CheckpointFolder, opened: CheckpointFile[], signal: AbortSignal | undefined): Promise<Map<string, string> | null> {
  signal?.throwIfAborted();
  const single = await folder.open(SINGLE, signal);
  if (single !== null) {
    opened.push(single);
    return null;
  }
  const text = await folder.text(INDEX, signal);
  if (text === null) throw new Error(`qkv: ${folder.where}: has neither ${SINGLE} nor ${INDEX} (a checkpoint folder holds config.json and one of them)`);
  const index = parseJsonObject(INDEX, text, folder.where);
  const map = index.weight_map;
  if (map === null || typeof map !== 'object' || Array.isArray(map)) throw new Error(`qkv: ${INDEX}: has no "weight_map" object (tensor name -> shard file)`);
  const weightMap = new Map<string, string>();
  const firstTensor = new Map<string, string>(); // shard -> the first tensor named in it, for messages
  for (const [name, shard] of Object.entries(map)) {
    if (typeof shard !== 'string') throw new Error(`qkv: ${INDEX}: weight_map["${name}"] is ${JSON.stringify(shard)}, not a file name`);
    try {
      checkFileName(shard, 'shard');
    } catch (error) {
      throw new Error(`qkv: ${INDEX}: weight_map["${name}"]: ${(error as Error).message.replace(/^qkv: /, '')}`);
    }
    weightMap.set(name, shard);
    if (!firstTensor.has(shard)) firstTensor.set(shard, name);
  }
  for (const [shard, tensor] of firstTensor) {
    signal?.throwIfAborted();
    const file = await folder.open(shard, signal);
    if (file === null) throw new Error(`qkv: ${INDEX}: names shard "${shard}" (for tensor "${tensor}" among others), which is not in ${folder.where}`);
    opened.push(file);
  }
  return weightMap;
}

function parseJsonObject(file: string, text: string | null, where: string): Record<string, unknown> {
  if (text === null) throw new Error(`qkv: ${file}: not found in ${where}`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`qkv: ${file}: not valid JSON (${(error as Error).message})`, { cause: error });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error(`qkv: ${file}: not a JSON object`);
  return value as Record<string, unknown>;
}

/** Reads and validates one file's header: its tensors, with offsets from the file's start. */
export async function readHeader(file: CheckpointFile, signal?: AbortSignal): Promise<CheckpointTensor[]> {
  signal?.throwIfAborted();
  const prefix = await file.read(0, 8, signal);
  if (prefix.length < 8) throw new Error(`qkv: ${file.name}: the file is ${prefix.length} bytes long, too short for the 8-byte header length a safetensors file starts with`);
  const length = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (length > BigInt(MAX_HEADER_BYTES)) throw new Error(`qkv: ${file.name}: header length ${length} is absurd (over ${MAX_HEADER_BYTES} bytes); is this a safetensors file?`);
  const size = file.size;
  if (size !== undefined && length > BigInt(size - 8)) throw new Error(`qkv: ${file.name}: header length ${length} runs past the end of the file (${size} bytes)`);
  const n = Number(length);
  signal?.throwIfAborted();
  const header = await file.read(8, 8 + n, signal);
  if (header.length < n) throw new Error(`qkv: ${file.name}: the file ends at byte ${8 + header.length}, inside its ${n}-byte header`);
  return parseHeader(file.name, header.subarray(0, n), 8 + n, size);
}

/**
 * The tensors a header describes, validated: each entry has a supported dtype, a shape of
 * non-negative integers and data_offsets [begin, end] that hold exactly shape's elements, lie within
 * the file (when its size is known) and overlap no other tensor's.
 */
export function parseHeader(file: string, bytes: Uint8Array, dataStart: number, fileSize?: number): CheckpointTensor[] {
  const fail = (message: string) => new Error(`qkv: ${file}: ${message}`);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (error) {
    throw new Error(`qkv: ${file}: the header is not valid JSON (${(error as Error).message})`, { cause: error });
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw fail('the header is not a JSON object');
  const tensors: CheckpointTensor[] = [];
  for (const [name, entry] of Object.entries(json as Record<string, unknown>)) {
    const bad = (message: string) => fail(`tensor "${name}": ${message}`);
    if (name === '__metadata__') {
      if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) throw fail('"__metadata__" is not an object');
      continue;
    }
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) throw bad('its entry is not an object with dtype, shape and data_offsets');
    const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
    if (dtype === undefined) throw bad('has no dtype');
    if (shape === undefined) throw bad('has no shape');
    if (offsets === undefined) throw bad('has no data_offsets');
    if (typeof dtype !== 'string') throw bad(`dtype ${JSON.stringify(dtype)} is not a string`);
    if (!Array.isArray(shape) || !shape.every(isCount)) throw bad(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) throw bad(`data_offsets ${JSON.stringify(offsets)} is not [begin, end] in bytes`);
    if (!Object.hasOwn(DTYPE_BYTES, dtype)) throw bad(`dtype ${dtype} is not supported (supported: ${SUPPORTED})`);
    const [begin, end] = offsets as number[];
    const at = `data_offsets [${begin}, ${end}]`;
    if (end < begin) throw bad(`${at} are out of order (end before begin)`);
    const elements = (shape as number[]).reduce((a, b) => a * b, 1);
    const needed = elements * DTYPE_BYTES[dtype as Dtype];
    if (end - begin !== needed) throw bad(`${at} hold ${end - begin} bytes, but shape [${shape.join(', ')}] of ${dtype} takes ${needed}`);
    if (fileSize !== undefined && dataStart + end > fileSize) throw bad(`${at} run past the end of the file (${fileSize} bytes)`);
    tensors.push({ name, dtype: dtype as Dtype, shape: Object.freeze([...(shape as number[])]), file, offset: dataStart + begin, byteLength: needed });
  }
  const byOffset = [...tensors].sort((a, b) => a.offset - b.offset || a.byteLength - b.byteLength);
  for (let i = 1; i < byOffset.length; i++) {
    const a = byOffset[i - 1], b = byOffset[i];
    if (b.offset < a.offset + a.byteLength) {
      const span = (t: CheckpointTensor) => `[${t.offset - dataStart}, ${t.offset - dataStart + t.byteLength}]`;
      throw fail(`tensor "${b.name}": data_offsets ${span(b)} overlap those of tensor "${a.name}" ${span(a)}`);
    }
  }
  return tensors;
}

/** Names a file may have within a folder: no absolute paths, no way out of it. */
function checkFileName(file: string, what: string): void {
  if (typeof file !== 'string' || file === '') throw new TypeError(`qkv: ${what} must be a non-empty file name, got ${JSON.stringify(file)}`);
  if (/^([/\\]|[a-z]:)/i.test(file) || file.split(/[/\\]/).includes('..')) {
    throw new TypeError(`qkv: ${what} "${file}" must name a file inside the checkpoint folder`);
  }
}

const isCount = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;

class SafetensorsCheckpoint implements Checkpoint {
  readonly format = 'safetensors';
  readonly totalBytes: number;
  #folder: CheckpointFolder;
  #files: Map<string, CheckpointFile>;
  #options: OpenCheckpointOptions;
  #closed = false;
  #counted = new Map<string, number>(); // bytes of each tensor progress has counted: at most its byteLength
  #loadedBytes = 0;

  constructor(
    readonly config: Record<string, unknown>,
    readonly tensors: ReadonlyMap<string, CheckpointTensor>,
    folder: CheckpointFolder,
    files: Map<string, CheckpointFile>,
    options: OpenCheckpointOptions,
  ) {
    this.#folder = folder;
    this.#files = files;
    this.#options = options;
    let total = 0;
    for (const t of tensors.values()) total += t.byteLength;
    this.totalBytes = total;
  }

  async read(name: string, into?: ReadTarget): Promise<Float32Array> {
    this.#check();
    const tensor = this.tensors.get(name);
    if (tensor === undefined) throw new Error(`qkv: read: the checkpoint has no tensor "${name}"`);
    return this.#readPart(tensor, tensor, into);
  }

  async readRows(name: string, from: number, to: number, into?: Float32Array): Promise<Float32Array> {
    this.#check();
    const tensor = this.tensors.get(name);
    if (tensor === undefined) throw new Error(`qkv: readRows: the checkpoint has no tensor "${name}"`);
    if (tensor.shape.length !== 2) throw new TypeError(`qkv: readRows: tensor "${name}" has shape [${tensor.shape.join(', ')}]; rows are read from 2-D tensors`);
    const [rows, cols] = tensor.shape;
    if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || from > to || to > rows) {
      throw new RangeError(`qkv: readRows: rows [${from}, ${to}) are not a range of tensor "${name}"'s ${rows} rows`);
    }
    const size = DTYPE_BYTES[tensor.dtype];
    return this.#readPart(tensor, { ...tensor, shape: [to - from, cols], offset: tensor.offset + from * cols * size, byteLength: (to - from) * cols * size }, into);
  }

  /** `part` of `tensor` (the whole, or rows of it) converted into `into` or a fresh array; progress counts its bytes. */
  async #readPart(tensor: CheckpointTensor, part: CheckpointTensor, into: ReadTarget | undefined): Promise<Float32Array> {
    const elements = part.byteLength / DTYPE_BYTES[part.dtype];
    const target = into ?? new Float32Array(elements);
    targetView(target, tensor.name, part.shape, elements);
    await readTensor(this.#files.get(tensor.file)!, part, target, this.#options.signal, () => this.#check());
    const out = targetView(target, tensor.name, part.shape, elements);
    // progress counts each tensor's bytes once, however it is read: whole, or rows at a time
    const counted = this.#counted.get(tensor.name) ?? 0, add = Math.min(part.byteLength, tensor.byteLength - counted);
    this.#counted.set(tensor.name, counted + add);
    this.#loadedBytes += add;
    this.#options.onProgress?.({ loadedBytes: this.#loadedBytes, totalBytes: this.totalBytes });
    return out;
  }

  async text(file: string): Promise<string | null> {
    this.#check();
    checkFileName(file, 'text: file');
    return this.#folder.text(file, this.#options.signal);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#files.values()].map((f) => f.close()));
  }

  #check(): void {
    if (this.#closed) throw new Error('qkv: the checkpoint is closed');
    this.#options.signal?.throwIfAborted();
  }
}

/**
 * Reads one tensor's bytes from `file` and converts them to float32 into `out` (its element count
 * long), in pieces of at most file.chunkBytes (rounded down to whole float32s). `check` runs before
 * each piece (abort, closed). A file shorter than the tensor's data is an Error naming both.
 */
export async function readTensor(file: CheckpointFile, tensor: CheckpointTensor, target: ReadTarget, signal?: AbortSignal, check?: () => void): Promise<void> {
  const total = tensor.byteLength, size = DTYPE_BYTES[tensor.dtype];
  const chunk = Number.isFinite(file.chunkBytes) ? Math.max(4, file.chunkBytes - (file.chunkBytes % 4)) : total;
  // float32 on a little-endian machine into an array that stays put: the file's bytes are the
  // destination's, so a reader that fills buffers reads straight into it; otherwise (a target whose
  // view may move while a read is pending) one scratch chunk is reused for every piece, and each is
  // converted into the target's view of the moment
  const fixed = target instanceof Float32Array ? target : null;
  const direct = fixed !== null && tensor.dtype === 'F32' && littleEndian ? new Uint8Array(fixed.buffer, fixed.byteOffset, total) : null;
  const scratch = direct === null && file.fillsInto === true ? new Uint8Array(Math.min(chunk, total)) : undefined;
  for (let done = 0; done < total; done += chunk) {
    check?.();
    signal?.throwIfAborted();
    const length = Math.min(chunk, total - done);
    const begin = tensor.offset + done;
    const bytes = await file.read(begin, begin + length, signal, direct?.subarray(done, done + length) ?? scratch);
    if (bytes.length < length) {
      throw new Error(
        `qkv: ${file.name}: tensor "${tensor.name}": the file ends at byte ${begin + bytes.length}, before the tensor's data does (byte ${tensor.offset + total}); was it truncated?`,
      );
    }
    convert(tensor.dtype, bytes.length === length ? bytes : bytes.subarray(0, length), viewOf(target), done / size);
  }
}

const littleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Converts little-endian `bytes` of `dtype` to float32 into out[at …]. Bit-exact, NaN payloads kept. */
export function convert(dtype: Dtype, bytes: Uint8Array, out: Float32Array, at: number): void {
  const n = bytes.length / DTYPE_BYTES[dtype];
  // written as bits, so that NaNs keep their payloads (a float store may canonicalize them)
  const bits = new Uint32Array(out.buffer, out.byteOffset + at * 4, n);
  if (dtype === 'F32') {
    if (!littleEndian) {
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (let i = 0; i < n; i++) bits[i] = view.getUint32(4 * i, true);
    } else if (bytes.buffer !== out.buffer || bytes.byteOffset !== bits.byteOffset) {
      new Uint8Array(bits.buffer, bits.byteOffset, bytes.length).set(bytes);
    }
  } else if (dtype === 'BF16') {
    // bfloat16 is the high half of a float32 (read as 16-bit words where the bytes allow it)
    if (littleEndian && bytes.byteOffset % 2 === 0) {
      const words = new Uint16Array(bytes.buffer, bytes.byteOffset, n);
      for (let i = 0; i < n; i++) bits[i] = words[i] << 16;
    } else {
      for (let i = 0; i < n; i++) bits[i] = (bytes[2 * i] << 16) | (bytes[2 * i + 1] << 24);
    }
  } else {
    const table = halfToFloatBits();
    for (let i = 0; i < n; i++) bits[i] = table[bytes[2 * i] | (bytes[2 * i + 1] << 8)];
  }
}

let halfTable: Uint32Array | null = null;

/** The float32 bits of every binary16 value (256 KB, built on first use). */
function halfToFloatBits(): Uint32Array {
  if (halfTable !== null) return halfTable;
  const table = new Uint32Array(65536);
  const f = new Float32Array(1), fBits = new Uint32Array(f.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16, exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
    if (exponent === 0x1f) table[h] = sign | 0x7f800000 | (mantissa << 13); // ±Inf, NaN (payload kept)
    else if (exponent !== 0) table[h] = sign | ((exponent - 15 + 127) << 23) | (mantissa << 13); // normal: rebias
    else {
      f[0] = mantissa * 2 ** -24; // ±0 and subnormals: m · 2^-24, exact in float32
      table[h] = sign | fBits[0];
    }
  }
  return (halfTable = table);
}
