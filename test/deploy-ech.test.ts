import { describe, expect, it } from 'vitest';
import { lachan, REPO_ROOT } from './harness/index.js';

// Encrypted Client Hello hides the site's name behind a shared outer name in the SNI.
// The shipped rules refuse those outer names for the student profiles (the `doh`
// category: ways around the school's name filtering), so a student cannot hide a site
// from the proxy; staff are not affected. The transparent-mode refusal on the wire is in
// deploy-transparent-netns.test.ts; the resolver setting in deploy/README.md.

const RULES = `${REPO_ROOT}/rules`;

function decide(profile: string, url: string): { action: string; category: string | null } {
  const result = lachan(['check', '--rules', RULES, '--profile', profile, '--json', url]);
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout) as { action: string; category: string | null };
}

describe('ECH outer names in the shipped rules', { timeout: 180_000 }, () => {
  it.each(['mam-non', 'tieu-hoc', 'thcs', 'thpt'])('are refused for %s', (profile) => {
    expect(decide(profile, 'https://cloudflare-ech.com/')).toMatchObject({ action: 'block', category: 'doh' });
  });

  it('are left to the staff profile, whose devices the school does not filter by name', () => {
    expect(decide('giao-vien', 'https://cloudflare-ech.com/').action).toBe('allow');
  });
});
