// The types of checkpoints and their readers: what openCheckpoint (./checkpoint.ts) gives, and the
// folder and file interfaces every format reader (./safetensors.ts, ./gguf.ts) reads through. Kept
// apart from openCheckpoint, which imports the readers, so that the readers import only types.

/** Where a checkpoint is: a folder (a Node path, a file: or http(s) URL) or its files by name. */
export type CheckpointSource = string | URL | { files: Record<string, Blob | ArrayBuffer | Uint8Array> };

/** The types tensors are stored in: safetensors' F32, F16 and BF16; GGUF's also Q8_0 and Q4_0 blocks. */
export type CheckpointDtype = 'F32' | 'F16' | 'BF16' | 'Q8_0' | 'Q4_0';

/** One tensor of a checkpoint, as its file's header describes it (D: the dtypes it may have, safetensors' by default). */
export interface CheckpointTensor<D extends CheckpointDtype = 'F32' | 'F16' | 'BF16'> {
  readonly name: string;
  /** Its type in the file; {@link Checkpoint.read} converts it to float32. */
  readonly dtype: D;
  readonly shape: readonly number[];
  /** The file that holds it, by name within the folder (a shard's name when sharded). */
  readonly file: string;
  /** Where its data starts in that file, in bytes from the file's start. */
  readonly offset: number;
  /** Its size in the file: elements times the dtype's size. */
  readonly byteLength: number;
}

/** An open checkpoint: its config, the table of its tensors, and tensors read one at a time. */
/**
 * Where {@link Checkpoint.read} writes a tensor: a Float32Array, or an object whose `data` is one
 * (an engine tensor: its `data` is taken again after every await, as the engine's memory may grow).
 */
export type ReadTarget = Float32Array | { readonly data: Float32Array };

/** The array to write into now: `target` itself, or its `data` of the moment. */
export const viewOf = (target: ReadTarget): Float32Array => (target instanceof Float32Array ? target : target?.data);

/** viewOf(target), checked to hold the `elements` of tensor `name` of `shape`. */
export function targetView(target: ReadTarget, name: string, shape: readonly number[], elements: number): Float32Array {
  const view = viewOf(target);
  if (!(view instanceof Float32Array)) throw new TypeError(`qkv: read: into must be a Float32Array or an object whose data is one (tensor "${name}")`);
  if (view.length !== elements) throw new RangeError(`qkv: read: into has ${view.length} elements, but tensor "${name}" of shape [${shape.join(', ')}] has ${elements}`);
  return view;
}

export interface Checkpoint {
  /** The file format the weights came from. */
  readonly format: 'safetensors' | 'gguf';
  /** config.json, parsed (for GGUF: synthesized from the metadata, with Hugging Face's keys). */
  readonly config: Record<string, unknown>;
  /** Every tensor of every shard, from the headers, by name. */
  readonly tensors: ReadonlyMap<string, CheckpointTensor<CheckpointDtype>>;
  /** The sum of the tensors' byteLength (the total that onProgress counts towards). */
  readonly totalBytes: number;
  /**
   * One tensor converted to float32: into `into` (a Float32Array whose length is the element count,
   * or an object whose `data` is one: an engine tensor, whose view moves when the engine's memory
   * grows, is read through `data` again after every await) or a fresh array. A name not in
   * {@link tensors} is an Error; a wrong `into` a TypeError or RangeError.
   */
  read(name: string, into?: ReadTarget): Promise<Float32Array>;
  /**
   * Optional (safetensors): rows [from, to) of a 2-D tensor converted to float32, into `into`
   * ((to − from) · columns long) or a fresh array, so that a large tensor can be read a piece at a
   * time (loadDecoder quantizes int8/int4 layers so). Rows outside the tensor are a RangeError, a
   * tensor that is not 2-D a TypeError.
   */
  readRows?(name: string, from: number, to: number, into?: Float32Array): Promise<Float32Array>;
  /**
   * Optional (GGUF only): a Q8_0 or Q4_0 tensor's blocks as stored (rows in Hugging Face's order), for
   * linear layers that keep them without requantizing; any other dtype is a TypeError.
   */
  readBlocks?(name: string): Promise<{ type: 'Q8_0' | 'Q4_0'; data: Uint8Array }>;
  /**
   * Optional (GGUF only): a Q8_0 or Q4_0 tensor as createLinear's int8/int4 groups of 32, as stored
   * (rows in Hugging Face's order), into `into` when given; a block createLinear cannot hold (a
   * non-finite scale, Q8_0's -128) is an Error naming the file and the tensor; any other dtype a TypeError.
   */
  readGroups?(name: string, into?: { q: Int8Array; scales: Float32Array }): Promise<CheckpointGroups>;
  /**
   * Another file of the checkpoint folder as text (tokenizer.json, tokenizer_config.json,
   * generation_config.json), or null if absent.
   */
  text(file: string): Promise<string | null>;
  /** Closes the files; a later read() or text() throws. Twice is harmless. */
  close(): Promise<void>;
}

/** A tensor as int8/int4 groups of 32: one integer per value and one float32 scale per group, row-major (createLinear's QuantizedWeight). */
export interface CheckpointGroups {
  readonly dtype: 'int8' | 'int4';
  readonly q: Int8Array;
  readonly scales: Float32Array;
}

/** Options of {@link openCheckpoint}. */
export interface OpenCheckpointOptions {
  /**
   * Cancels opening and every later read: checked before each read and passed to fetch(). An aborted
   * call rejects with the signal's reason. Default: none.
   */
  signal?: AbortSignal;
  /**
   * Called after each tensor read with the bytes of the distinct tensors read so far (so loadedBytes
   * reaches totalBytes once every tensor has been read once). Default: none.
   */
  onProgress?: (p: { loadedBytes: number; totalBytes: number }) => void;
}

/**
 * One file of a checkpoint folder, read at byte offsets. The format readers see only this, so a new
 * place to read from is one implementation of it.
 */
export interface CheckpointFile {
  /** Its name within the folder, for messages. */
  readonly name: string;
  /** Its size in bytes, or undefined while not known (a server that did not say). */
  readonly size: number | undefined;
  /**
   * The largest read worth making at once: a tensor bigger than this is read and converted in pieces
   * of this many bytes (Infinity: one read per tensor).
   */
  readonly chunkBytes: number;
  /**
   * Bytes [begin, end), fewer when the file ends first. `into` (at least end - begin bytes) is a
   * buffer the reader may fill and return a view of; a reader that holds the bytes already returns a
   * view of its own instead.
   */
  read(begin: number, end: number, signal?: AbortSignal, into?: Uint8Array): Promise<Uint8Array>;
  /** True when read() fills `into` (a file on disk): callers then pass one, reused from read to read. */
  readonly fillsInto?: boolean;
  close(): Promise<void>;
}

/** A checkpoint folder: its files by name. */
export interface CheckpointFolder {
  /** The path or URL, for messages. */
  readonly where: string;
  /** The file, or null if the folder has none of that name. */
  open(file: string, signal?: AbortSignal): Promise<CheckpointFile | null>;
  /** The file as text, or null if absent. */
  text(file: string, signal?: AbortSignal): Promise<string | null>;
}
