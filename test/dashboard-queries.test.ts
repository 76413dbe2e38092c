import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dayNumber, dayToIso } from '../src/central/days.js';
import { openSqliteStore } from '../src/central/sqlite-store.js';
import { wireEvent } from './harness/index.js';

const dataDir = mkdtempSync(path.join(tmpdir(), 'lachan-dash-queries-'));
const store = openSqliteStore({ dataDir });
afterAll(async () => {
  await store.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('schools the dashboard calls silent', () => {
  it('are those whose gateway has not sent anything for more than a day', async () => {
    const calling = await store.addSchool('TH Trạm Tấu');
    const never = await store.addSchool('THCS Mù Cang Chải');
    const sentAt = Date.now();
    await store.ingest(calling.id, [wireEvent({ time: sentAt })], sentAt);
    const queries = store.dashboardQueries;
    const at = (ms: number) => Object.fromEntries(queries.schools(null, ms).map((s) => [s.id, s.silent]));
    expect(at(sentAt + 23 * 3_600_000)).toEqual({ [calling.id]: false, [never.id]: true });
    expect(at(sentAt + 25 * 3_600_000)).toEqual({ [calling.id]: true, [never.id]: true });
    expect(queries.schools(calling.id, sentAt).map((s) => [s.id, s.lastContact])).toEqual([[calling.id, sentAt]]);
  });

  it('names the rule and file:line of the newest block of a host, per school', async () => {
    const a = await store.addSchool('A');
    const b = await store.addSchool('B');
    const t = Date.now();
    await store.ingest(
      a.id,
      [
        wireEvent({ time: t - 1000, host: 'x.example', rule: 'old.example', source: 'f:1' }),
        wireEvent({ time: t, host: 'x.example', rule: 'x.example', source: 'f:2' }),
      ],
      t,
    );
    await store.ingest(b.id, [wireEvent({ time: t - 500, host: 'x.example', rule: 'b-rule', source: 'g:9' })], t);
    // As the dashboard's page does: statistics first, which bring in every acknowledged event.
    const today = dayToIso(dayNumber(t));
    await store.stats({ fromDay: today, toDay: today });
    const queries = store.dashboardQueries;
    expect(queries.hostRule('x.example', 'gambling', null)).toEqual({ rule: 'x.example', source: 'f:2' });
    expect(queries.hostRule('x.example', 'gambling', b.id)).toEqual({ rule: 'b-rule', source: 'g:9' });
    expect(queries.hostRule('x.example', 'games', null)).toEqual({ rule: null, source: null });
  });
});
