// The peers against qkv's reference on the case table's small cases (lib/cases.js, checkCases), every
// case printed: `node bench/check-peers.js` (CI runs it; no timing). Throws on a mismatch.
import { checkPeers, MAX_TOLERANCE } from './lib/check-peers.js';
import { loadPeers } from './lib/peers/index.js';

const peers = await loadPeers('all');
for (const p of peers) console.log(await p.init());
for (const { peer, cases } of await checkPeers(peers)) {
  console.log(`\n${peer.name} vs qkv reference (allowed: max |diff| <= the op's tolerance (lib/cases.js) * max(1, max |ref|), at most ${MAX_TOLERANCE})`);
  for (const x of cases) console.log(`  ${x.op.padEnd(21)} ${x.shape.padEnd(36)} max |diff| ${x.maxAbsDiff.toExponential(2)}  (max |ref| ${x.maxRef.toPrecision(3)})`);
}
for (const p of peers) await p.close();
console.log('\nall peers agree with the reference');
