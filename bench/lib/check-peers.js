// Checks that each peer computes what qkv's reference engine computes, on the case table's small
// odd-sized inputs (checkCases), through the same setup() the benchmark times. bench/check-peers.js
// prints every case; run.js calls checkPeers() before timing and prints one line per peer. Throws on
// a mismatch.
import { reference } from 'qkv';
import { checkCases, compareToReference, TOLERANCE } from './cases.js';

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
