import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { lachan } from './rules.js';

/** A school enrolled at a district collector, with the files its gateway is given. */
export interface EnrolledSchool {
  readonly id: string;
  readonly token: string;
  /** The collector's public key, which the gateway checks the signed policy with. */
  readonly policyKey: string;
  readonly tokenFile: string;
  readonly keyFile: string;
}

/**
 * `lachan central school add --json` on the collector's data folder `centralData`; the
 * school's token and the collector's policy key written into `dir` (token, collector.pub)
 * as an operator hands them to the school's gateway.
 */
export function enrolSchool(centralData: string, dir: string, name: string): EnrolledSchool {
  const enrolment = lachan(['central', 'school', 'add', '--name', name, '--data', centralData, '--json']);
  if (enrolment.code !== 0) throw new Error(`lachan central school add exited with ${enrolment.code}: ${enrolment.stderr}`);
  const school = JSON.parse(enrolment.stdout) as { id: string; token: string; policyKey: string };
  const tokenFile = path.join(dir, 'token');
  const keyFile = path.join(dir, 'collector.pub');
  writeFileSync(tokenFile, `${school.token}\n`, { mode: 0o600 });
  writeFileSync(keyFile, school.policyKey);
  return { ...school, tokenFile, keyFile };
}

/** `lachan serve` options joining `school` to the collector at `collectorUrl`, fetching the signed policy every `pollSeconds`. */
export function districtGatewayArgs(collectorUrl: string, school: EnrolledSchool, pollSeconds: number): string[] {
  return [
    '--central',
    collectorUrl,
    '--school',
    school.id,
    '--token-file',
    school.tokenFile,
    '--central-key',
    school.keyFile,
    '--policy-interval',
    String(pollSeconds),
  ];
}
