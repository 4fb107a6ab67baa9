// Explicit resource management: `using engine = await createEngine()` disposes the engine at the end
// of the block. Every object with dispose() or free() also answers to [Symbol.dispose], which calls
// that method (the method stays; [Symbol.dispose] after dispose() or free() does nothing).
//
// Runtimes without Symbol.dispose (browsers from before explicit resource management) get it under
// Symbol.for('Symbol.dispose'): the symbol that esbuild's and Babel's down-levelled `using` look up
// when Symbol.dispose is missing, so code they compiled still disposes qkv's objects there. (tsc's
// own helper throws "Symbol.dispose is not defined" on such runtimes unless Symbol.dispose is
// polyfilled, and a polyfill loaded before qkv is what this picks up.)

/** Symbol.dispose, or where the runtime lacks it, the registered symbol transpiled `using` falls back to. */
export const disposeSymbol: typeof Symbol.dispose = (Symbol.dispose ?? Symbol.for('Symbol.dispose')) as typeof Symbol.dispose;


/** Symbol.asyncDispose, or its registered stand-in (the token streams of createBatcher are AsyncGenerators, which have it). */
export const asyncDisposeSymbol: typeof Symbol.asyncDispose = (Symbol.asyncDispose ?? Symbol.for('Symbol.asyncDispose')) as typeof Symbol.asyncDispose;
