import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadPolicy } from '../src/rules/loader.js';
import { DeviceTrust } from '../src/proxy/device-trust.js';
import { lachan, makeRulesDir } from './harness/index.js';

const POLICY = `version: 1
default_profile: thcs
profiles:
  thcs:
    name: THCS
    inspect: true
intercept: never
clients:
  - cidr: 10.20.0.0/16
    profile: thcs
  - cidr: 10.20.1.0/24
    profile: thcs
    intercept: always
`;

describe('intercept modes in policy.yaml', () => {
  it('gives each address the mode of its most specific range, and the top-level mode elsewhere', async () => {
    const policy = await loadPolicy(makeRulesDir({ 'policy.yaml': POLICY }));
    expect(policy.clientRange('10.20.1.7').intercept).toBe('always');
    expect(policy.clientRange('10.20.9.7').intercept).toBe('never');
    expect(policy.clientRange('192.168.1.5')).toMatchObject({ cidr: null, intercept: 'never' });
    const learnedByDefault = await loadPolicy(makeRulesDir({ 'policy.yaml': POLICY.replace('intercept: never\n', '') }));
    expect(learnedByDefault.clientRange('10.20.9.7').intercept).toBe('learned');
  });

  it('refuses an unknown mode with FILE:LINE', () => {
    const dir = makeRulesDir({ 'policy.yaml': POLICY.replace('intercept: always', 'intercept: sometimes') });
    const result = lachan(['rules', 'lint', '--rules', dir]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(`${path.join(dir, 'policy.yaml')}:13: intercept must be one of always, learned, never, not "sometimes"`);
  });
});

describe('device trust', () => {
  it('trusts a device after its probe went through, and not after a later refusal', () => {
    const trust = new DeviceTrust();
    trust.setCa('AA');
    trust.noteSeen('10.0.0.5', 1);
    expect(trust.isTrusted('10.0.0.5')).toBe(false);
    trust.noteProbe('::ffff:10.0.0.5', true, 2);
    expect(trust.isTrusted('10.0.0.5')).toBe(true);
    trust.noteProbe('10.0.0.5', false, 3);
    expect(trust.isTrusted('10.0.0.5')).toBe(false);
  });

  it('merges what other workers learned, the later time winning, and forgets trust under a new CA', () => {
    const trust = new DeviceTrust({ ca: 'AA', devices: { '10.0.0.5': { seen: 5, refused: 6 } } }, 10);
    expect(trust.merge('10.0.0.5', { seen: 7, trusted: 7 })).toBe(true);
    expect(trust.merge('10.0.0.5', { seen: 7, trusted: 7 })).toBe(false);
    expect(trust.snapshot(10).devices['10.0.0.5']).toEqual({ seen: 7, trusted: 7, refused: 6 });
    expect(trust.isTrusted('10.0.0.5')).toBe(true);
    trust.setCa('BB');
    expect(trust.isTrusted('10.0.0.5')).toBe(false);
    expect(trust.snapshot(10)).toEqual({ ca: 'BB', devices: { '10.0.0.5': { seen: 7 } } });
  });

  it('forgets a device not heard of for 90 days when the state is read back', () => {
    const day = 24 * 60 * 60 * 1000;
    const now = 200 * day;
    const trust = new DeviceTrust(
      { ca: 'AA', devices: { '10.0.0.5': { seen: now - 91 * day, trusted: now - 91 * day }, '10.0.0.6': { seen: now - 95 * day, trusted: now - 10 * day } } },
      now,
    );
    expect(Object.keys(trust.snapshot(now).devices)).toEqual(['10.0.0.6']);
  });
});
