import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { curl, type CurlResult } from './curl.js';
import { policyYaml, type RunningGateway, startGateway } from './gateway.js';
import { type Origin, startHttpOrigin } from './origins.js';
import { CLI, makeRulesDir, type RulesFiles } from './rules.js';

/**
 * Device addresses the classroom tests use: a student outside every room (the default
 * profile), a device of the exam room 127.0.5.0/24, a teacher's device (127.0.9.0/24
 * is given the staff profile). All are loopback, so curl can send from them.
 */
export const STUDENT_DEVICE = '127.0.0.1';
export const ROOM_DEVICE = '127.0.5.5';
export const TEACHER_DEVICE = '127.0.9.9';
export const STAFF_PASSWORD = 'phấn trắng bảng đen';

/** The classroom staff page (docs/classroom.md) on the proxy port. */
export const STAFF_PAGE = '/__lachan__/lop-hoc';

/** A teacher's browser: a device address and its cookie jar, talking to the staff page with the real curl. */
export class StaffBrowser {
  private readonly jar = path.join(mkdtempSync(path.join(tmpdir(), 'lachan-jar-')), 'cookies');
  private csrf = '';

  constructor(
    /** The gateway's proxy port: set again after a restart, the cookies kept. */
    public port: number,
    readonly from: string,
  ) {}

  get(): Promise<CurlResult> {
    return this.send(null);
  }

  async login(name: string, password: string): Promise<CurlResult> {
    return this.send({ do: 'login', name, password });
  }

  /** Posts a form of the page with the CSRF token of the last page seen. */
  act(fields: Readonly<Record<string, string>>): Promise<CurlResult> {
    return this.send({ csrf: this.csrf, ...fields });
  }

  private async send(fields: Readonly<Record<string, string>> | null): Promise<CurlResult> {
    const args = ['-b', this.jar, '-c', this.jar];
    for (const [name, value] of Object.entries(fields ?? {})) args.push('--data-urlencode', `${name}=${value}`);
    const result = await curl(null, `http://127.0.0.1:${this.port}${STAFF_PAGE}`, { from: this.from, args });
    const token = /name="csrf" value="([^"]+)"/.exec(result.body);
    if (token !== null) this.csrf = token[1]!;
    return result;
  }
}

export interface ClassroomState {
  exams: { id: string; room: string; endsAt: number }[];
  overrides: { id: string; host: string; endsAt: number }[];
}

/** DATA/classroom.json as the gateway wrote it. */
export function readClassroomState(dataDir: string): ClassroomState {
  try {
    return JSON.parse(readFileSync(path.join(dataDir, 'classroom.json'), 'utf8')) as ClassroomState;
  } catch {
    return { exams: [], overrides: [] };
  }
}

/** Lines of DATA/audit.jsonl. */
export function readAuditLines(dataDir: string): { action: string; target: string; details: Record<string, unknown> }[] {
  try {
    return readFileSync(path.join(dataDir, 'audit.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { action: string; target: string; details: Record<string, unknown> });
  } catch {
    return [];
  }
}

type AuditLine = ReturnType<typeof readAuditLines>[number];

/** The first audit line matching `wanted`, polled for up to about four seconds (ends are audited by a one-second sweep). */
export async function auditLineUntil(dataDir: string, wanted: (line: AuditLine) => boolean): Promise<AuditLine | undefined> {
  for (let attempt = 0; attempt < 40; attempt++) {
    const line = readAuditLines(dataDir).find(wanted);
    if (line !== undefined) return line;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return undefined;
}

/** Waits until the wall clock has passed `ms` (an end time), plus a small margin. */
export async function waitUntil(ms: number, marginMs = 150): Promise<void> {
  const wait = ms + marginMs - Date.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
}

/** `lachan users add NAME` in a rules folder, the password on stdin. */
export function addGatewayUser(rulesDir: string, name: string, password: string): void {
  execFileSync(process.execPath, [CLI, 'users', 'add', name, '--rules', rulesDir], { input: `${password}\n`, stdio: ['pipe', 'pipe', 'pipe'] });
}

/**
 * A rules folder for the classroom tests: the default profile `hs` and the `profiles`
 * given, then the staff profile `giao-vien` for teachers' devices (127.0.9.0/24) before
 * the `clients` given, and the proxy accounts (name → profile), each with STAFF_PASSWORD.
 */
export function makeClassroomRules(options: {
  readonly profiles: Parameters<typeof policyYaml>[0]['profiles'];
  readonly clients?: readonly { cidr: string; profile: string }[];
  readonly accounts: Readonly<Record<string, string>>;
  readonly files: RulesFiles;
}): string {
  const accounts = Object.entries(options.accounts)
    .map(([name, profile]) => `    ${name}: ${profile}\n`)
    .join('');
  const rulesDir = makeRulesDir({
    'policy.yaml': policyYaml({
      defaultProfile: 'hs',
      profiles: { ...options.profiles, 'giao-vien': { name: 'Giáo viên' } },
      clients: [{ cidr: '127.0.9.0/24', profile: 'giao-vien' }, ...(options.clients ?? [])],
      extra: `proxy_auth:\n  users_file: users\n  profiles:\n${accounts}`,
    }),
    ...options.files,
  });
  for (const name of Object.keys(options.accounts)) addGatewayUser(rulesDir, name, STAFF_PASSWORD);
  return rulesDir;
}

/** A gateway whose classroom "minute" lasts one second (the test-only --classroom-minute-ms); `dataDir` to restart on one. */
export function startClassroomGateway(rulesDir: string, hosts: string, dataDir?: string): Promise<RunningGateway> {
  return startGateway({ rulesDir, hosts, args: ['--classroom-minute-ms', '1000', ...(dataDir === undefined ? [] : ['--data', dataDir])] });
}

/** An origin answering `origin HOST` (the Host header it was sent), so a test sees which site was reached. */
export function startHostEchoOrigin(): Promise<Origin> {
  return startHttpOrigin((req, res) => res.end(`origin ${req.headers.host}`));
}
