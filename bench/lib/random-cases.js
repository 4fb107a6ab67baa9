// Random cases of every op, shared by bench/soak.js (many calls on one engine, memory watched) and
// test/runtimes/check.js (a few hundred calls on each build and thread count, under Bun and Deno):
// for each op a generator of a call at a random shape (sizes 0 and 1 included) or at its largest,
// calls with bad input that must throw, and the comparison at the tolerance of the API.
import { tensor } from 'qkv';

/** The README's tolerance: |a - b| <= ABS_TOL + REL_TOL · |b|. */
export const ABS_TOL = 1e-4, REL_TOL = 1e-4;

/** The generators, drawing from one mulberry32 stream started at `seed`. */
export function randomCases(seed) {
  // ------------------------------------------------------------------ random inputs

  let state = seed >>> 0;
  /** mulberry32 in [0, 1). */
  function rand() {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));
  /** Mostly small sizes, 0 and 1 often, up to `max`. */
  const dim = (max) => (rand() < 0.15 ? int(0, 1) : rand() < 0.7 ? int(1, Math.min(max, 8)) : int(1, max));
  const pick = (xs) => xs[Math.floor(rand() * xs.length)];
  const size = (shape) => shape.reduce((a, b) => a * b, 1);

  function data(shape, scale = 1) {
    const out = new Float32Array(size(shape));
    for (let i = 0; i < out.length; i++) out[i] = (2 * rand() - 1) * scale;
    return out;
  }
  const t = (shape, scale) => tensor(data(shape, scale), shape);
  const lens = (n, max) => Array.from({ length: n }, () => int(0, max));
  function boolMask(shape) {
    const m = new Uint8Array(size(shape));
    for (let i = 0; i < m.length; i++) m[i] = rand() < 0.75 ? 1 : 0;
    return { data: m, shape };
  }
  function additiveMask(shape) {
    const m = data(shape, 2);
    for (let i = 0; i < m.length; i++) if (rand() < 0.15) m[i] = -Infinity;
    return { data: m, shape };
  }
  /** A mask that broadcasts to `target`: some axes 1, some leading axes dropped. */
  function randomMask(target) {
    const shape = target.map((d) => (rand() < 0.5 ? d : 1)).slice(int(0, target.length - 1));
    return rand() < 0.5 ? boolMask(shape) : additiveMask(shape);
  }

  // ------------------------------------------------------------------ the ops, at random or largest shapes

  /**
   * Each op: `make(big)` returns { label, run(engine) -> the result's tensors }, with random sizes,
   * or every size at its largest when `big`. `inputs(case)` lists the input tensors (for NaN poking).
   */
  const ops = {
    matmul(big) {
      const d = (max) => (big ? max : dim(max));
      const lead = big ? [3] : pick([[], [], [d(3)], [d(3), d(2)]]);
      const M = d(128), K = d(128), N = d(128), transposeB = rand() < 0.5;
      // some leading axes 1 or missing, to broadcast
      const aLead = big ? lead : lead.map((x) => (rand() < 0.3 ? 1 : x));
      const bLead = big ? lead : lead.map((x) => (rand() < 0.3 ? 1 : x)).slice(int(0, lead.length));
      const a = t(big || rand() > 0.1 ? [...aLead, M, K] : [K]);
      const b = t(big || rand() > 0.1 ? [...bLead, ...(transposeB ? [N, K] : [K, N])] : [K]);
      return { label: `a [${a.shape}] b [${b.shape}] transposeB ${transposeB}`, inputs: [a, b], run: (e) => [e.matmul(a, b, { transposeB })] };
    },
    softmax(big) {
      const x = t(big ? [32, 1000] : pick([[dim(1000)], [dim(32), dim(1000)], [dim(4), dim(8), dim(128)]]), 5);
      return { label: `x [${x.shape}]`, inputs: [x], run: (e) => [e.softmax(x)] };
    },
    maskedSoftmax(big) {
      const d = (max) => (big ? max : dim(max));
      const B = d(4), Lq = d(32), Lk = d(256), x = t([B, Lq, Lk], 5);
      const l = big || rand() < 0.5 ? lens(B * Lq, Lk) : lens(B, Lk);
      return { label: `x [${x.shape}] validLens ${l.length}`, inputs: [x], run: (e) => [e.maskedSoftmax(x, l)] };
    },
    kernelRegression(big) {
      const d = (max) => (big ? max : dim(max));
      const n = d(256), m = d(512), f = big ? 4 : pick([0, 1, 2, 4]), dv = big ? 4 : pick([0, 1, 3]);
      const q = t(f ? [n, f] : [n], 2), k = t(f ? [m, f] : [m], 2), v = t(dv ? [m, dv] : [m]);
      const o = { w: big ? 1 : pick([undefined, 0, 0.5, 2, 10]), returnWeights: big || rand() < 0.3 };
      return { label: `q [${q.shape}] k [${k.shape}] v [${v.shape}] ${JSON.stringify(o)}`, inputs: [q, k, v], run: (e) => outputs(e.kernelRegression(q, k, v, o)) };
    },
    kernelRegressionLoss(big) {
      const d = (max) => (big ? max : dim(max));
      const leaveOneOut = big || rand() < 0.5;
      const n = d(256), m = leaveOneOut ? n : d(512), f = big ? 4 : pick([0, 1, 2, 4]), dv = big ? 4 : pick([0, 1, 3]);
      const q = t(f ? [n, f] : [n], 2), k = t(f ? [m, f] : [m], 2), v = t(dv ? [m, dv] : [m]), y = t(dv ? [n, dv] : [n]);
      const o = { w: big ? 1 : pick([undefined, 0, 0.5, 2, 10]), leaveOneOut, reduction: pick(['mean', 'sum']) };
      return {
        label: `q [${q.shape}] k [${k.shape}] v [${v.shape}] ${JSON.stringify(o)}`, inputs: [q, k, v, y],
        run: (e) => {
          const r = e.kernelRegressionLoss(q, k, v, y, o);
          return [r.output, tensor([r.loss, r.dLossDw], [2])];
        },
      };
    },
    additiveAttention(big) {
      const d = (max) => (big ? max : dim(max));
      const B = d(3), Lq = d(32), Lk = d(64), Dq = d(32), Dk = d(32), Dv = d(32), h = d(32);
      const q = t([B, Lq, Dq]), k = t([B, Lk, Dk]), v = t([B, Lk, Dv]);
      const params = { Wq: t([h, Dq]), Wk: t([h, Dk]), wv: t([1, h]) };
      const o = { returnWeights: big || rand() < 0.3, validLens: rand() < 0.5 ? lens(rand() < 0.5 ? B : B * Lq, Lk) : undefined };
      return { label: `q [${q.shape}] k [${k.shape}] v [${v.shape}] h ${h}`, inputs: [q, k, v], run: (e) => outputs(e.additiveAttention(q, k, v, params, o)) };
    },
    scaledDotProductAttention(big) {
      const d = (max) => (big ? max : dim(max));
      const rank = big ? 4 : pick([3, 4]);
      const B = d(2), Hkv = rank === 3 ? 1 : d(4), Hq = rank === 3 ? 1 : Hkv * (big ? 2 : int(1, 2));
      const Lq = d(128), Lnew = d(128), Lpast = big ? 32 : pick([0, 0, 0, dim(32)]), E = d(64), Ev = d(64);
      const heads = (h) => (rank === 3 ? [] : [h]);
      const q = t([B, ...heads(Hq), Lq, E]), k = t([B, ...heads(Hkv), Lnew, E]), v = t([B, ...heads(Hkv), Lnew, Ev]);
      const Lk = Lpast + Lnew;
      const o = {
        scale: rand() < 0.3 ? rand() * 2 : undefined,
        softcap: rand() < 0.2 ? pick([0, 1, 5]) : undefined,
        causal: pick([undefined, false, true, 'top-left', 'bottom-right']),
        window: rand() < 0.2 ? { left: pick([undefined, 0, 3]), right: pick([undefined, 0, 2]) } : undefined,
        validLens: rand() < 0.3 ? lens(B, Lk) : undefined,
        mask: big ? additiveMask([B, ...heads(Hq), Lq, Lk]) : rand() < 0.4 ? randomMask([B, ...heads(Hq), Lq, Lk]) : undefined,
        returnWeights: big || rand() < 0.3,
      };
      if (Lpast > 0) { o.pastKey = t([B, ...heads(Hkv), Lpast, E]); o.pastValue = t([B, ...heads(Hkv), Lpast, Ev]); }
      const label = `q [${q.shape}] k [${k.shape}] v [${v.shape}] past ${Lpast} ${JSON.stringify({ ...o, mask: o.mask?.shape, pastKey: undefined, pastValue: undefined })}`;
      return { label, inputs: [q, k, v], run: (e) => outputs(e.scaledDotProductAttention(q, k, v, o)) };
    },
    multiHeadAttention(big) {
      const d = (max) => (big ? max : dim(max));
      const B = d(2), Lq = d(48), Lk = d(48), H = big ? 4 : int(1, 4), E = H * (big ? 16 : int(1, 16));
      const separate = !big && rand() < 0.3, kdim = separate ? d(64) : E, vdim = separate ? d(64) : E;
      const s = 1 / Math.sqrt(Math.max(E, 1));
      const params = {
        numHeads: H, outProjWeight: t([E, E], s),
        ...(separate ? { qProjWeight: t([E, E], s), kProjWeight: t([E, kdim], s), vProjWeight: t([E, vdim], s) } : { inProjWeight: t([3 * E, E], s) }),
        ...(rand() < 0.5 ? { inProjBias: t([3 * E], 0.1), outProjBias: t([E], 0.1) } : {}),
        ...(rand() < 0.2 ? { biasK: t([1, 1, E]), biasV: t([1, 1, E]) } : {}),
        addZeroAttn: rand() < 0.2,
      };
      const q = t([B, Lq, E]), k = t([B, Lk, kdim]), v = t([B, Lk, vdim]);
      const o = {
        causal: pick([false, true, 'bottom-right']),
        keyPaddingMask: rand() < 0.3 ? boolMask([B, Lk]) : undefined,
        mask: rand() < 0.3 ? randomMask([Lq, Lk]) : undefined,
        needWeights: big || rand() < 0.3, averageWeights: rand() < 0.5,
      };
      return { label: `q [${q.shape}] k [${k.shape}] v [${v.shape}] H ${H}`, inputs: [q, k, v], run: (e) => outputs(e.multiHeadAttention(q, k, v, params, o)) };
    },
    selfAttention(big) {
      const B = big ? 2 : dim(2), L = big ? 64 : dim(64), H = big ? 2 : int(1, 2), E = H * (big ? 16 : int(1, 16));
      const x = t([B, L, E]), params = { numHeads: H, inProjWeight: t([3 * E, E], 0.3), outProjWeight: t([E, E], 0.3) };
      const o = { causal: rand() < 0.5, needWeights: big || rand() < 0.3 };
      return { label: `x [${x.shape}] H ${H}`, inputs: [x], run: (e) => outputs(e.selfAttention(x, params, o)) };
    },
    positionalEncoding(big) {
      const maxLen = big ? 128 : dim(128), d = big ? 64 : dim(64);
      return { label: `[${maxLen}, ${d}]`, inputs: [], run: (e) => [e.positionalEncoding(maxLen, d)] };
    },
  };

  /** Bad input, each of which must throw a TypeError or RangeError and leave nothing behind. */
  const badInputs = [
    (e) => e.matmul(t([2, 3]), t([4, 5])),
    (e) => e.matmul(t([dim(8), 3]), t([3, 2]), { transposeB: 'yes' }),
    (e) => e.softmax({ data: new Float64Array(4), shape: [2, 2] }),
    (e) => e.maskedSoftmax(t([2, 2, 3]), [1, 4]),
    (e) => e.kernelRegression(t([3]), t([4]), t([4]), { w: -1 }),
    (e) => e.kernelRegressionLoss(t([3]), t([4]), t([4]), t([3]), { leaveOneOut: true }),
    (e) => e.additiveAttention(t([1, 2, 3]), t([1, 4, 5]), t([1, 4, 6]), { Wq: t([8, 4]), Wk: t([8, 5]), wv: t([1, 8]) }),
    (e) => e.scaledDotProductAttention(t([1, 3, 2, 4]), t([1, 2, 5, 4]), t([1, 2, 5, 4])),
    (e) => e.scaledDotProductAttention(t([1, 2, 4]), t([1, 5, 4]), t([1, 5, 4]), { scale: NaN }),
    (e) => e.scaledDotProductAttention(t([1, 2, 4]), t([1, 5, 4]), t([1, 5, 4]), { mask: { data: new Int32Array(10), shape: [2, 5] } }),
    (e) => e.scaledDotProductAttention(t([1, 2, 4]), t([1, 5, 4]), t([1, 5, 4]), { validLens: [6] }),
    // fails inside the wasm wrapper, after copying inputs in: the output would exceed 4 GiB
    (e) => e.matmul(t([40_000, 1]), t([1, 40_000])),
    (e) => e.selfAttention(t([1, 2, 6]), { numHeads: 4, inProjWeight: t([18, 6]), outProjWeight: t([6, 6]) }),
    (e) => e.positionalEncoding(-1, 4),
  ];

  return { rand, int, pick, ops, names: Object.keys(ops), badInputs };
}

// ------------------------------------------------------------------ results and their comparison

/** The tensors of an op's result, in a fixed order. */
export function outputs(r) {
  return [r.output, r.weights, r.presentKey, r.presentValue].filter((x) => x !== undefined);
}

/** The largest |a - b| and the largest ratio of it to the tolerance; Infinity when NaN/Infinity differ. */
export function compare(got, want) {
  if (got.shape.length !== want.shape.length || got.shape.some((d, i) => d !== want.shape[i])) return { diff: Infinity, ratio: Infinity, at: -1 };
  let diff = 0, ratio = 0, at = -1;
  for (let i = 0; i < want.data.length; i++) {
    const a = got.data[i], b = want.data[i];
    if (a === b || (Number.isNaN(a) && Number.isNaN(b))) continue;
    const d = Number.isFinite(a) && Number.isFinite(b) ? Math.abs(a - b) : Infinity;
    const r = d / (ABS_TOL + REL_TOL * Math.abs(b));
    if (d > diff) diff = d;
    if (r > ratio) { ratio = r; at = i; }
  }
  return { diff, ratio, at };
}
