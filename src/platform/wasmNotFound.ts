// The error both sides of #fetch-bytes throw when the .wasm is not where qkv looks for it: most often
// a bundler that did not emit it, or a server that does not serve it. Imports nothing, so browser
// bundles may take it.

/** An Error that says where the wasm was looked for, why it failed, and the two ways out. */
export function wasmNotFound(where: URL | string, why: string, cause?: unknown): Error {
  return new Error(
    `qkv: could not load the wasm from ${String(where)}: ${why}. If a bundler or a server moved or dropped the .wasm, `
    + "pass its URL, its bytes or a compiled WebAssembly.Module as createEngine({ wasm }), or import 'qkv/inline', "
    + 'which embeds the wasm and fetches nothing',
    cause === undefined ? undefined : { cause },
  );
}
