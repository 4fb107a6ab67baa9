// Command-line options of the bench scripts: `--name` flags and `--name value` / `--name=value` values.
const args = process.argv.slice(2);

/** Whether `--name` was given. */
export const flag = (name) => args.includes(name);

/** The value of `--name value` or `--name=value`, or undefined. */
export function value(name) {
  const eq = args.find((a) => a.startsWith(`${name}=`));
  if (eq) return eq.slice(name.length + 1);
  return args.includes(name) ? args[args.indexOf(name) + 1] : undefined;
}

/**
 * The clock a bench times with, in ms: the wall clock, or with `--cpu` this process's CPU time (user
 * + system, process.cpuUsage). On a machine whose cores other jobs share, a call's wall time includes
 * the time it waited for a core; its CPU time does not (memory and cache contention still count).
 */
export const now = flag('--cpu') ? () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; } : () => performance.now();
