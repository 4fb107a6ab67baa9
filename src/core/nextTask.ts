// Yielding to the event loop between the steps of a long-running async loop (generate, the batcher),
// so that timers, I/O, an AbortController's abort and other generators run between two steps.

/** Resolves after the event loop's pending tasks (timers, I/O, an abort) have had their turn. */
export function nextTask(): Promise<void> {
  const g = globalThis as { setImmediate?: (f: () => void) => void };
  if (typeof g.setImmediate === 'function') return new Promise((resolve) => g.setImmediate!(resolve));
  if (typeof MessageChannel === 'function') {
    // browsers clamp nested setTimeout(0) to 4 ms; a message is a task with no clamp
    return new Promise((resolve) => {
      const channel = new MessageChannel();
      channel.port1.onmessage = () => {
        channel.port1.close();
        resolve();
      };
      channel.port2.postMessage(null);
    });
  }
  return new Promise((resolve) => setTimeout(resolve, 0));
}
