// A linear layer y = x Wᵀ + b whose weight lives in engine memory, packed once into the GEMM's panels
// (./packed.ts; assembly/kernels/linearF16.ts draws the layout): a forward reads the weight front to
// back as one stream, whatever T.
//
//   'float32'  gemm_pack_f32's panels, products by gemm_packed_f32 (gemmPacked)
//   'float16'  the same panels of binary16 values (linear_pack_f16, rounded to nearest even as
//              src/reference/kvFormats.ts does), products by linear_f16, widened in registers
//
//   'int8'     linear_quant_pack's groups (assembly/kernels/linearQuant.ts draws the layout: 4 output
//   'int4'     rows interleaved per group, the scales beside their values, int4 as nibbles); each
//              forward quantizes x's rows once into scratch (linear_quant_x, Q8_0 activations) and
//              linear_i8 / linear_i4 take integer dot products, threads splitting blocks of 4 output
//              rows; every T runs the same kernel (see gemmQuant), so an element's bits depend
//              neither on T nor on the split
//
// A weight given already quantized (a QuantizedWeight: q and scales) is packed as is by
// linear_quant_pack_q into the same layout, so the layer is the one its float weights would give.
//
// lookup() reads rows of the stored weight out of its panels (linear_rows_f32 / linear_rows_f16 /
// linear_quant_rows, dequantized), so
// an embedding table and a tied LM head are one stored matrix. The bias is held beside the weight in
// float32.

import { disposeSymbol } from '../core/dispose.js';
import { LINEAR_APPEND, LINEAR_BUILDER, LINEAR_CREATE, LINEAR_FORWARD, LINEAR_LOOKUP, type LinearPlan, planLinear, planLinearAppend, planLinearBuilder, planLinearForward, planLinearLookup } from '../core/linearPlan.js';
import type { LinearBuilder, LinearBuilderOptions, LinearDtype, LinearLayer, LinearOptions, QuantizedWeight } from '../core/modelTypes.js';
import { formatCall, fromData, type Tensor } from '../core/tensor.js';
import type { WasmContext } from './context.js';
import { gemmPacked, holdPacked, PANEL, packedBytes } from './packed.js';

/**
 * Up to this many rows of x, threads split the output panels (so that a decode step runs on every
 * thread); above it, pairs of rows. As gemmPacked's.
 */
const COLUMN_SPLIT_ROWS = 16;

/** C[m, n] = A[m, k] · Wᵀ (+ bias) with W packed by linear_pack_f16; pointers into the arena, bias 0 for none. */
function gemmHalf({ kernels, arena, parallel }: WasmContext, c: number, a: number, w: number, m: number, n: number, k: number, bias: number, special: number): void {
  const panels = Math.ceil(n / PANEL);
  arena.scoped(() => {
    const scratch = arena.perThread(kernels.linear_f16_scratch(k), parallel.threads);
    if (m <= COLUMN_SPLIT_ROWS) {
      parallel.run('linear_f16', panels, m * k * PANEL, (t, p0, p1) => [
        c + p0 * PANEL * 4, a, w, bias === 0 ? 0 : bias + p0 * PANEL * 4,
        m, Math.min(n, p1 * PANEL) - p0 * PANEL, k, n, panels, p0, special, scratch(t),
      ]);
    } else {
      parallel.run('linear_f16', m, n * k, (t, r0, r1) => [c + r0 * n * 4, a + r0 * k * 4, w, bias, r1 - r0, n, k, n, panels, 0, special, scratch(t)], 2);
    }
  });
}

/** Output rows a quantized layer interleaves (R in assembly/kernels/linearQuant.ts; must match). */
export const QUANT_BLOCK_ROWS = 4;

/**
 * Y[m, n] = X · Wᵀ (+ bias) with W packed by linear_quant_pack (bits 8 or 4): X's rows quantized once
 * into scratch, then threads take ranges of 4-row blocks of outputs.
 * Prefill (many rows) runs the same kernel, so that a row's bits never depend on T. It is the slower
 * choice there (slower than float32's packed GEMM at T = 128: docs/MODELS.md has the figures): the
 * kernel shares a weight group's loads between two rows of x but not its dot products, so T rows
 * cost about 0.87 T times one row's compute; dequantizing panels into the float32 GEMM would cost
 * the GEMM plus a pass over the weight, but gives up batch invariance above some T (not done).
 */
function gemmQuant({ kernels, arena, parallel }: WasmContext, y: number, x: number, w: number, m: number, n: number, k: number, g: number, bits: 8 | 4, bias: number): void {
  arena.scoped(() => {
    const xq = arena.alloc(kernels.linear_quant_x_size(m, k, g, bits));
    kernels.linear_quant_x(xq, x, m, k, g, bits);
    const blocks = Math.ceil(n / QUANT_BLOCK_ROWS);
    const kernel = bits === 8 ? 'linear_i8' : 'linear_i4';
    parallel.run(kernel, blocks, m * k * QUANT_BLOCK_ROWS, (_t, b0, b1) => [
      y, xq, w, bias, m, n, k, g, b0 * QUANT_BLOCK_ROWS, Math.min(n, b1 * QUANT_BLOCK_ROWS),
    ]);
  });
}

/** Values a quantized layer packs at once from a weight outside engine memory (a multiple of 4 rows). */
const PACK_VALUES = 1 << 20;

/**
 * Packs the weight of a quantized plan into `at`: at once from an engine tensor; from an array
 * outside engine memory (float weights, or q and scales) a piece of 4-row blocks at a time through
 * scratch, so that the engine's memory holds the packed weight plus one piece, not a copy of the
 * whole (blocks of 4 rows pack alone, so the pieces make the same bytes).
 */
function packQuant(ctx: WasmContext, at: number, plan: LinearPlan, bits: 8 | 4, describe: () => string): void {
  const { kernels, arena } = ctx;
  const { outFeatures: N, inFeatures: K, groupSize: g, quantized: given } = plan;
  const G = K / g;
  const name = `${LINEAR_CREATE}: weight${given ? '.q' : ''}`;
  if (arena.resident(given ? given.q : plan.W!, name)) {
    arena.call(describe, () => {
      if (given) kernels.linear_quant_pack_q(at, arena.input(given.q, name), arena.input(given.scales, `${LINEAR_CREATE}: weight.scales`), N, K, g, bits);
      else kernels.linear_quant_pack(at, arena.input(plan.W!, name), N, K, g, bits);
    });
    return;
  }
  if (!given) {
    packRows(ctx, at, 0, plan.W!.data, N, K, g, bits, describe);
    return;
  }
  inPieces(ctx, at, 0, N, K, g, bits, describe, (dst, r0, r1) =>
    kernels.linear_quant_pack_q(dst, arena.write(given.q.data.subarray(r0 * K, r1 * K)), arena.write(given.scales.data.subarray(r0 * G, r1 * G)), r1 - r0, K, g, bits),
  );
}

/**
 * Rows [0, n) of a weight given outside engine memory, packed as rows `from` .. from + n of the
 * packed weight at `at` a piece at a time (PACK_VALUES values, whole blocks of 4 rows): `pack(dst,
 * r0, r1)` writes the piece's rows [r0, r1) through scratch to dst, inside one arena call. `from` is
 * a multiple of 4, and so is n unless the rows end the weight (blocks of 4 rows pack alone).
 */
function inPieces(ctx: WasmContext, at: number, from: number, n: number, K: number, g: number, bits: 8 | 4, describe: () => string, pack: (dst: number, r0: number, r1: number) => void): void {
  const step = Math.max(1, Math.floor(PACK_VALUES / K / QUANT_BLOCK_ROWS)) * QUANT_BLOCK_ROWS;
  for (let r0 = 0; r0 < n; r0 += step) {
    const r1 = Math.min(n, r0 + step), dst = at + ctx.kernels.linear_quant_size(from + r0, K, g, bits);
    ctx.arena.call(describe, () => pack(dst, r0, r1));
  }
}

/** Float rows (values outside engine memory, [n, K]) quantized and packed as rows `from` .. from + n (inPieces). */
function packRows(ctx: WasmContext, at: number, from: number, values: Float32Array, n: number, K: number, g: number, bits: 8 | 4, describe: () => string): void {
  const { kernels, arena } = ctx;
  inPieces(ctx, at, from, n, K, g, bits, describe, (dst, r0, r1) => kernels.linear_quant_pack(dst, arena.write(values.subarray(r0 * K, r1 * K)), r1 - r0, K, g, bits));
}

/** A layer's weight and bias in engine memory: the blocks to free, the weight's and bias's addresses (bias 0 for none), linear_pack_f16's flag. */
interface StoredLinear {
  readonly blocks: number[];
  readonly w: number;
  readonly b: number;
  readonly special: number;
}

/**
 * Stores a checked weight (and bias) in engine memory in its format. Apart from createWasmLinear so
 * that the layer's closures do not hold the plan, whose arrays are the caller's (a loader's scratch
 * of q and scales) and must not live as long as the layer.
 */
function storeLinear(ctx: WasmContext, plan: LinearPlan, bits: 8 | 4 | 0): StoredLinear {
  const { arena, kernels } = ctx;
  const { inFeatures: K, outFeatures: N, dtype, groupSize: g } = plan;
  // shapes only: the arena keeps `describe` while it holds the layer's blocks
  const shapes: Record<string, readonly number[]> = plan.bias ? { weight: [N, K], bias: plan.bias.shape } : { weight: [N, K] };
  const describe = () => formatCall(LINEAR_CREATE, shapes);
  const blocks: number[] = [];
  let w = 0, b = 0, special = 0;
  try {
    if (dtype === 'float32') {
      w = holdPacked(ctx, plan.W!, `${LINEAR_CREATE}: weight`, describe);
      blocks.push(w);
    } else if (bits === 0) {
      w = arena.hold(packedBytes(ctx, N, K) / 2, 'weights', describe);
      blocks.push(w);
      const at = w;
      arena.call(describe, () => { special = kernels.linear_pack_f16(at, arena.input(plan.W!, `${LINEAR_CREATE}: weight`), N, K); });
    } else {
      w = arena.hold(kernels.linear_quant_size(N, K, g, bits), 'weights', describe);
      blocks.push(w);
      packQuant(ctx, w, plan, bits, describe);
    }
    if (plan.bias) {
      b = arena.holdCopy(plan.bias, 'weights', describe);
      blocks.push(b);
    }
  } catch (error) {
    blocks.forEach((p) => arena.free(p));
    throw error;
  }
  return { blocks, w, b, special };
}

/** What a layer is, apart from its stored weight: shapes, storage, int8/int4's group size and bits (0 for float storages). */
interface LinearShape {
  readonly K: number;
  readonly N: number;
  readonly dtype: LinearDtype;
  readonly g: number;
  readonly bits: 8 | 4 | 0;
}

const bitsOf = (dtype: LinearDtype): 8 | 4 | 0 => (dtype === 'int8' ? 8 : dtype === 'int4' ? 4 : 0);

/** `context` throws once the engine is disposed (as createWasmGroupedQuery's). */
export function createWasmLinear(context: () => WasmContext, weight: Tensor | QuantizedWeight, options?: LinearOptions): LinearLayer {
  // no closure may name `plan`: a closure's context would keep it, and with it the caller's arrays
  const plan = planLinear(weight, options);
  const { inFeatures: K, outFeatures: N, dtype, groupSize: g } = plan;
  const bits = bitsOf(dtype);
  return linearLayer(context, { K, N, dtype, g, bits }, storeLinear(context(), plan, bits));
}

/** The layer over a weight stored in engine memory (its blocks are the layer's from now on). */
function linearLayer(context: () => WasmContext, { K, N, dtype, g, bits }: LinearShape, { blocks, w, b, special }: StoredLinear): LinearLayer {
  const ctx = context();
  const { arena, kernels } = ctx;
  const stored = bits !== 0 ? kernels.linear_quant_size(N, K, g, bits) : dtype === 'float32' ? packedBytes(ctx, N, K) : packedBytes(ctx, N, K) / 2;
  const bytes = stored + (b !== 0 ? N * 4 : 0);
  let live = true;
  /** The engine's context while both the layer and the engine live. */
  const use = (): WasmContext => {
    if (!live) throw new Error('qkv: this linear layer has been disposed');
    return context();
  };
  return {
    inFeatures: K,
    outFeatures: N,
    dtype,
    bytes,
    forward(x, options) {
      const c = use();
      const f = planLinearForward(K, N, x, options);
      c.arena.checkOut(f.out);
      const { T } = f;
      if (T === 0) return f.out ? f.out.tensor : fromData(new Float32Array(0), [0, N]);
      return c.arena.call(() => formatCall(LINEAR_FORWARD, { x: f.x.shape }), () => {
        const px = c.arena.input(f.x, `${LINEAR_FORWARD}: x`);
        const py = c.arena.outputApart(f.out, f.x) || c.arena.allocF32(T * N);
        if (bits !== 0) gemmQuant(c, py, px, w, T, N, K, g, bits, b);
        else if (dtype === 'float32') gemmPacked(c, py, px, w, T, N, K, b);
        else gemmHalf(c, py, px, w, T, N, K, b, special);
        return c.arena.result(py, T * N, [T, N], f.out);
      });
    },
    lookup(ids, options) {
      const c = use();
      const l = planLinearLookup(K, N, ids, options);
      c.arena.checkOut(l.out);
      const n = l.ids.length;
      if (n === 0) return l.out ? l.out.tensor : fromData(new Float32Array(0), [0, K]);
      return c.arena.call(() => formatCall(LINEAR_LOOKUP, { ids: [n] }), () => {
        const pids = c.arena.write(l.ids);
        const py = c.arena.outputApart(l.out) || c.arena.allocF32(n * K);
        if (bits !== 0) c.kernels.linear_quant_rows(py, w, pids, n, N, K, g, bits, l.scale);
        else if (dtype === 'float32') c.kernels.linear_rows_f32(py, w, pids, n, N, K, l.scale);
        else c.kernels.linear_rows_f16(py, w, pids, n, N, K, l.scale);
        return c.arena.result(py, n * K, [n, K], l.out);
      });
    },
    dispose() {
      if (!live) return;
      live = false;
      blocks.forEach((p) => arena.free(p));
    },
    [disposeSymbol]() {
      this.dispose();
    },
  };
}

/**
 * createLinearBuilder: the packed weight held at once, each append's rows quantized and packed into
 * it a piece at a time (packRows); rows short of a block of 4 wait in `pending` for the next append.
 */
export function createWasmLinearBuilder(context: () => WasmContext, shape: readonly number[], options: LinearBuilderOptions): LinearBuilder {
  const { dtype, groupSize: g, outFeatures: N, inFeatures: K, bias } = planLinearBuilder(shape, options);
  const bits = dtype === 'int8' ? 8 : 4, ctx = context();
  const describe = () => formatCall(LINEAR_BUILDER, { shape: [N, K] });
  const w = ctx.arena.hold(ctx.kernels.linear_quant_size(N, K, g, bits), 'weights', describe);
  let b = 0;
  try {
    if (bias) b = ctx.arena.holdCopy(bias, 'weights', describe);
  } catch (error) {
    ctx.arena.free(w);
    throw error;
  }
  const pending = new Float32Array(QUANT_BLOCK_ROWS * K);
  let rows = 0, waiting = 0, open = true;
  const use = (what: string): WasmContext => {
    if (!open) throw new Error(`qkv: ${what}: this linear builder has been finished or disposed`);
    return context();
  };
  const dispose = (): void => {
    if (!open) return;
    open = false;
    ctx.arena.free(w);
    if (b !== 0) ctx.arena.free(b);
  };
  return {
    outFeatures: N,
    inFeatures: K,
    get rows() {
      return rows + waiting;
    },
    append(given) {
      const c = use(LINEAR_APPEND);
      const R = planLinearAppend(K, N - rows - waiting, given);
      // a view of engine memory is read before packing allocates (which may move that memory)
      let values = c.arena.resident(R, `${LINEAR_APPEND}: rows`) ? R.data.slice() : R.data;
      let n = R.shape[0];
      if (waiting > 0) {
        const take = Math.min(n, QUANT_BLOCK_ROWS - waiting);
        pending.set(values.subarray(0, take * K), waiting * K);
        waiting += take;
        values = values.subarray(take * K);
        n -= take;
        if (waiting < QUANT_BLOCK_ROWS && rows + waiting < N) return;
        packRows(c, w, rows, pending, waiting, K, g, bits, describe);
        rows += waiting;
        waiting = 0;
      }
      const whole = rows + n === N ? n : n - (n % QUANT_BLOCK_ROWS);
      packRows(c, w, rows, values, whole, K, g, bits, describe);
      rows += whole;
      waiting = n - whole;
      pending.set(values.subarray(whole * K, n * K));
    },
    finish() {
      use('LinearBuilder.finish');
      if (rows < N) throw new RangeError(`LinearBuilder.finish: ${rows + waiting} of the weight's ${N} rows are in`);
      open = false;
      return linearLayer(context, { K, N, dtype, g, bits }, { blocks: b !== 0 ? [w, b] : [w], w, b, special: 0 });
    },
    dispose,
    [disposeSymbol]: dispose,
  };
}
