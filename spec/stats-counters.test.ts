/**
 * lib/stats.ts: the core's counters (the common ones always, the rare ones
 * made on their first count) and the AgentStats that getStats() shows.
 */
import t from 'tap';
import { createCounters, createStats, countDrop, countRare, snapshotStats } from '../lib/stats.js';

t.test('a session that counted nothing rare holds no rare counters, and shows every AgentStats field as zero', async (t) => {
  const st = createCounters();
  st.packetsReceived += 3;
  st.responsesSent++;
  t.equal(st.rare, undefined, 'no rare counters made');
  const shown = snapshotStats(st);
  const full = createStats();
  t.same(Object.keys(shown).sort(), Object.keys(full).sort(), 'the same fields as AgentStats');
  t.same(Object.keys(shown.dropped).sort(), Object.keys(full.dropped).sort(), 'and every drop reason');
  t.equal(shown.packetsReceived, 3);
  t.equal(shown.responsesSent, 1);
  t.equal(shown.roleConflicts, 0);
  t.equal(shown.dropped.badIntegrity, 0);
  t.equal(st.rare, undefined, 'showing them made none either');
});

t.test('rare counts and drops land in AgentStats; a snapshot is a copy', async (t) => {
  const st = createCounters();
  countDrop(st, 'badIntegrity');
  countDrop(st, 'badIntegrity');
  countRare(st, 'roleConflicts');
  countRare(st, 'tcpConnectionsOpened');
  const shown = snapshotStats(st);
  t.equal(shown.dropped.badIntegrity, 2);
  t.equal(shown.roleConflicts, 1);
  t.equal(shown.tcpConnectionsOpened, 1);
  t.equal(shown.dropped.malformed, 0);
  shown.dropped.badIntegrity = 99;
  shown.roleConflicts = 99;
  t.equal(snapshotStats(st).dropped.badIntegrity, 2, 'changing a snapshot changes nothing counted');
  t.equal(snapshotStats(st).roleConflicts, 1);
});
