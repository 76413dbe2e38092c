import { mkdirSync, rmSync } from 'node:fs';
import { Agent, fetch as undiciFetch } from 'undici';
import { expect } from 'vitest';
import { newEventId } from '../../src/events/ids.js';
import type { WireEvent } from '../../src/events/wire.js';
import { type Collector, stopCollector } from './collector.js';
import { lachan } from './rules.js';

export const PASSWORD = 'mật-khẩu-đủ-dài-2026';

export function addSchool(dataDir: string, name: string): { id: string; token: string } {
  // On SQLite the command makes the folder; on PostgreSQL (npm run test:collector-pg) the
  // folder still holds the collector's files (organisation.yaml, the admin token) a test writes.
  mkdirSync(dataDir, { recursive: true });
  const result = lachan(['central', 'school', 'add', '--name', name, '--data', dataDir, '--json']);
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout) as { id: string; token: string };
}

/** `lachan central user add` with the password on stdin, as a script would. */
export function addUser(dataDir: string, name: string, role: string, school?: string): void {
  const result = lachan(['central', 'user', 'add', name, '--role', role, '--data', dataDir, ...(school ? ['--school', school] : [])], `${PASSWORD}\n`);
  expect(result.stderr).not.toContain(PASSWORD);
  expect(result.stdout).not.toContain(PASSWORD);
  expect(result.code).toBe(0);
}

export function wireEvent(overrides: Partial<WireEvent> = {}): WireEvent {
  const time = overrides.time ?? Date.now();
  return {
    id: newEventId(time),
    time,
    profile: 'tieu-hoc',
    category: 'gambling',
    reason: 'domain',
    rule: 'nhacai.example',
    source: 'rules/categories/gambling/domains:3',
    host: 'www.nhacai.example',
    path: '/dang-ky',
    method: 'GET',
    client: '0123456789abcdef',
    ...overrides,
  };
}

/** Ships a batch through the real ingest API with the school's token. */
export async function ingest(url: string, school: { id: string; token: string }, events: WireEvent[]): Promise<void> {
  const response = await fetch(`${url}/api/v1/events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${school.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ school: school.id, events }),
  });
  expect(response.status).toBe(200);
  const ack = (await response.json()) as { acked: string[] };
  expect(ack.acked).toHaveLength(events.length);
}

export interface LoggedIn {
  /** `Cookie` header value carrying the session. */
  readonly cookie: string;
  readonly csrf: string;
}

function cookieValue(setCookies: string[], name: string): string | null {
  for (const line of setCookies) {
    const match = new RegExp(`^${name}=([^;]*)`).exec(line);
    if (match) return match[1]!;
  }
  return null;
}

const agents = new Map<string, Agent>();

/** A fetch whose connections leave from `from` (another loopback address, as another machine would be). */
export function fetchFrom(from: string | undefined): typeof fetch {
  if (from === undefined) return fetch;
  let agent = agents.get(from);
  if (agent === undefined) agents.set(from, (agent = new Agent({ localAddress: from })));
  const dispatcher = agent;
  return ((input: string, init: RequestInit = {}) => undiciFetch(input, { ...(init as object), dispatcher })) as unknown as typeof fetch;
}

/** Fetches the login form, posts it like a browser (from the source address `from`, when given); returns the login response. */
export async function postLogin(url: string, name: string, password: string, from?: string): Promise<Response> {
  const fetch = fetchFrom(from);
  const form = await fetch(`${url}/login`);
  const html = await form.text();
  const csrf = /name="csrf" value="([^"]+)"/.exec(html)![1]!;
  const loginCookie = cookieValue(form.headers.getSetCookie(), 'lachan_login_csrf')!;
  return fetch(`${url}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `lachan_login_csrf=${loginCookie}` },
    body: new URLSearchParams({ csrf, name, password }).toString(),
  });
}

export async function login(url: string, name: string, password = PASSWORD, from?: string): Promise<LoggedIn> {
  const response = await postLogin(url, name, password, from);
  expect(response.status).toBe(303);
  const session = cookieValue(response.headers.getSetCookie(), 'lachan_session');
  expect(session).not.toBeNull();
  const cookie = `lachan_session=${session}`;
  const page = await fetch(`${url}/`, { headers: { cookie } });
  expect(page.status).toBe(200);
  const csrf = /<meta name="csrf" content="([^"]+)"/.exec(await page.text())![1]!;
  return { cookie, csrf };
}

/** A GET of the dashboard as the browser of `who` sends it (its session cookie; none when absent), redirects not followed. */
export function getAs(collectorUrl: string, pathname: string, who?: LoggedIn): Promise<Response> {
  return fetch(`${collectorUrl}${pathname}`, { redirect: 'manual', headers: who ? { cookie: who.cookie } : {} });
}

/** After a file's tests: its collector stopped (if it started) and its data folder removed. */
export async function removeCollector(collector: Collector | undefined, dataDir: string): Promise<void> {
  if (collector) await stopCollector(collector);
  rmSync(dataDir, { recursive: true, force: true });
}
