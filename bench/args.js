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
