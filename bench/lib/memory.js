// Peak memory of a piece of work, from Linux's own accounting: each process's peak resident set (VmHWM)
// is reset to its current one (5 written to /proc/PID/clear_refs) before the work, then read after it.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';

/** The pids of `pid` and all its descendants. */
export function processTree(pid) {
  const children = new Map();
  for (const p of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const ppid = Number(readFileSync(`/proc/${p}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(p));
    } catch { /* gone */ }
  }
  const out = [];
  const walk = (p) => { out.push(p); for (const c of children.get(p) ?? []) walk(c); };
  walk(pid);
  return out;
}

/** VmRSS and VmHWM (peak) of a process, bytes; null when it is gone. */
function rss(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
    return { rss: kb('VmRSS'), peak: kb('VmHWM') };
  } catch {
    return null;
  }
}

/**
 * Peak memory of `pids()` while `f` runs: each process's peak (VmHWM) is reset to its current RSS first
 * (writing 5 to /proc/PID/clear_refs; Linux), then the sum over the processes of their peak minus their
 * RSS before, plus the RSS of processes that started meanwhile. Resolves to { result, peakBytes }.
 */
export async function peakAdded(pids, f) {
  const before = new Map();
  for (const pid of pids()) {
    try { writeFileSync(`/proc/${pid}/clear_refs`, '5'); } catch { /* not ours, or gone */ }
    const m = rss(pid);
    if (m) before.set(pid, m.rss);
  }
  const result = await f();
  let peakBytes = 0;
  for (const pid of pids()) {
    const m = rss(pid);
    if (m) peakBytes += Math.max(0, m.peak - (before.get(pid) ?? 0));
  }
  return { result, peakBytes };
}
