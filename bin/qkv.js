#!/usr/bin/env node
// The package's command line: `npx qkv serve <checkpoint> [--port 8080] …` (src/serving/cli.ts, built
// into dist/). Imported by path, so the package needs only a "bin" entry, no export of it.
import { main } from '../dist/serving/cli.js';

main(process.argv.slice(2)).catch((error) => {
  console.error(`qkv: ${error?.message ?? error}`);
  process.exit(1);
});
