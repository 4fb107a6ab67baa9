// Checks that each peer computes what qkv's reference engine computes, on small odd-sized inputs,
// through the same setup() the benchmark times. `node bench/check-peers.js` prints every case;
// run.js calls checkPeers() before timing and prints one line per peer. Throws on a mismatch.
import { pathToFileURL } from 'node:url';
import { reference } from 'qkv';
import { checkCases, compareToReference, TOLERANCE } from './cases.js';
import { loadPeers } from './peers/index.js';

/** The largest tolerance of any op (cases.js), for the one-line summary. */
export const MAX_TOLERANCE = Math.max(...Object.values(TOLERANCE));

/** Per peer: { peer, cases: [{ op, shape, maxAbsDiff, maxRef }], worst }, worst = max over cases of maxAbsDiff / max(1, maxRef). */
export async function checkPeers(peers) {
  const report = [];
  for (const peer of peers) {
    const cases = [];
    for (const c of checkCases()) {
      if (!peer.ops.includes(c.op)) continue;
      const inputs = c.inputs();
      const expected = c.qkv(reference, inputs).data;
      const runner = await peer.setup(c, inputs);
      const got = runner.toQkv(await runner.call());
      runner.dispose();
      if (got.length !== expected.length) throw new Error(`${peer.name} ${c.op} ${c.shape}: ${got.length} outputs, reference has ${expected.length}`);
      const { maxAbsDiff, maxRef, worst } = compareToReference(got, expected);
      if (!(maxAbsDiff <= c.tolerance * Math.max(1, maxRef))) {
        throw new Error(`${peer.name} ${c.op} ${c.shape} differs from qkv reference: at ${worst} ${got[worst]} vs ${expected[worst]}, max |ref| ${maxRef} (tolerance ${c.tolerance})`);
      }
      cases.push({ op: c.op, shape: c.shape, maxAbsDiff, maxRef });
    }
    report.push({ peer, cases, worst: Math.max(...cases.map((x) => x.maxAbsDiff / Math.max(1, x.maxRef))) });
  }
  return report;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const peers = await loadPeers('all');
  for (const p of peers) console.log(await p.init());
  for (const { peer, cases } of await checkPeers(peers)) {
    console.log(`\n${peer.name} vs qkv reference (allowed: max |diff| <= the op's tolerance (cases.js) * max(1, max |ref|), at most ${MAX_TOLERANCE})`);
    for (const x of cases) console.log(`  ${x.op.padEnd(21)} ${x.shape.padEnd(36)} max |diff| ${x.maxAbsDiff.toExponential(2)}  (max |ref| ${x.maxRef.toPrecision(3)})`);
  }
  for (const p of peers) await p.close();
  console.log('\nall peers agree with the reference');
}
