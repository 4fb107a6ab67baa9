// The peers qkv is measured against. Each module exports:
//   name, short          for the tables ('onnxruntime-web' / 'ort')
//   async                whether call() returns a promise
//   ops                  the op families it runs (others get no row)
//   notes                per op family, how the peer computes it (printed under the table)
//   init({ threads })    loads the runtime; resolves to a one-line description with its version
//   setup(case, inputs)  builds the peer's tensors from qkv's inputs once per case; resolves to
//                        { call, toQkv, dispose }: call() is what is timed and gives the output data,
//                        toQkv(data) puts it in qkv's layout (for check-peers.js)
//   close()              releases what init and setup cached
const available = {
  ort: () => import('./onnxruntime.js'),
  tfjs: () => import('./tfjs.js'),
};

/** 'all' (default), 'none', or a comma-separated list of short names: 'ort,tfjs'. Loaded lazily. */
export async function loadPeers(spec = 'all') {
  if (spec === 'none') return [];
  const names = spec === 'all' ? Object.keys(available) : spec.split(',').map((s) => s.trim());
  for (const n of names) {
    if (!available[n]) throw new Error(`unknown peer '${n}': use ${Object.keys(available).join(', ')}, all or none`);
  }
  return Promise.all(names.map((n) => available[n]()));
}
