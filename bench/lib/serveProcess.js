// `qkv serve` in a child process, for the benchmarks that drive it over HTTP (serve-load.js,
// serve-soak.js): so that the server's event loop is not shared with the clients.
import { spawn } from 'node:child_process';

/**
 * Starts `node <args>` (bin/qkv.js serve …, with --port 0) and resolves once it prints the address it
 * listens on: { child, base } (base: its http:// URL). `stderr`: 'inherit' or 'pipe' (read it from
 * child.stderr). Rejects if the server exits first.
 */
export function startServer(args, { stderr = 'inherit' } = {}) {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', stderr] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve({ child, base: m[1] });
    });
    child.on('exit', (code) => reject(new Error(`the server exited (${code}) before listening`)));
  });
}

/** The events of a server-sent-events body, one string each ('data: {...}', 'data: [DONE]'), as they arrive. */
export async function* sseEvents(body) {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const part of body) {
    buffer += decoder.decode(part, { stream: true });
    let at;
    while ((at = buffer.indexOf('\n\n')) >= 0) {
      yield buffer.slice(0, at);
      buffer = buffer.slice(at + 2);
    }
  }
}
