/**
 * Brings one subscribed list up to date, from its own address (a conditional GET with
 * the ETag and Last-Modified of the version in force, so an unchanged list costs one
 * small 304) or from the district collector (`GET /api/v1/lists/NAME?since=VERSION`:
 * 304 when current, the added and removed entries when the collector still has the
 * version held, the whole list otherwise; see src/central/lists-mirror.ts).
 *
 * A new version is applied only when it parses, compiles and has not lost more than
 * half the entries of the last good one; otherwise the last good version stays in
 * force and the refusal is recorded in the list's state (counted, shown by
 * `lachan lists status`).
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { request } from 'undici';
import type { ListSubscription } from './config.js';
import { applyDelta, checkCompiles, checkNotShrunk, entriesOf, ListRefusal, listVersionOf, parseDownload, type ListVersion } from './entries.js';
import { isGzip, ut1ArchiveText } from './ut1-archive.js';
import { applyVersion, readState, readVersionText, writeState, type ListError, type ListState } from './store.js';

export type UpdateOutcome = 'updated' | 'current' | 'refused' | 'unreachable';

export interface ListUpdateResult {
  readonly name: string;
  readonly outcome: UpdateOutcome;
  /** The version in force after the update (the last good one when refused). */
  readonly version: string | null;
  readonly entries: number;
  readonly error: ListError | null;
  /** Body bytes received (as sent on the wire). */
  readonly bytes: number;
  readonly via: 'direct' | 'central';
  /** For a collector answer: `full`, `delta` or `unchanged`. */
  readonly kind: 'full' | 'delta' | 'unchanged';
}

/** The district collector a gateway takes its lists from (`serve --central`). */
export interface CentralListSource {
  readonly url: string;
  readonly tokenFile: string;
}

export interface UpdateOptions {
  readonly dataDir: string;
  /** Versions kept on disk (the gateway 2; the collector more, to answer deltas). */
  readonly keep?: number;
  readonly central?: CentralListSource | null;
  readonly now?: () => number;
}

/** Downloads over this are refused: no real block list comes near it. */
const MAX_BODY_BYTES = 256 * 1024 * 1024;
const USER_AGENT = 'lachan-lists/1';

interface Fetched {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
  readonly wireBytes: number;
}

async function fetchBody(url: string | URL, headers: Record<string, string>): Promise<Fetched> {
  const response = await request(url, {
    method: 'GET',
    headers: { 'user-agent': USER_AGENT, 'accept-encoding': 'gzip', ...headers },
    headersTimeout: 30_000,
    bodyTimeout: 120_000,
  });
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response.body) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) {
      response.body.destroy();
      throw new ListRefusal('LACHAN_LIST_HTTP', `câu trả lời lớn hơn ${MAX_BODY_BYTES} byte`);
    }
    chunks.push(chunk as Buffer);
  }
  const raw = Buffer.concat(chunks);
  const encoding = response.headers['content-encoding'];
  let body = raw;
  if (encoding === 'gzip' && raw.length > 0) {
    try {
      body = gunzipSync(raw, { maxOutputLength: MAX_BODY_BYTES });
    } catch (error) {
      throw new ListRefusal('LACHAN_LIST_UNPARSEABLE', `không giải nén được gzip: ${(error as Error).message}`);
    }
  }
  return { status: response.statusCode, headers: response.headers, body, wireBytes: raw.length };
}

function header(headers: Fetched['headers'], name: string): string | null {
  const value = headers[name];
  return typeof value === 'string' ? value : Array.isArray(value) ? (value[0] ?? null) : null;
}

type Answer =
  | { readonly kind: 'unchanged'; readonly bytes: number; readonly validators?: Partial<ListState> }
  | { readonly kind: 'full' | 'delta'; readonly bytes: number; readonly candidate: ListVersion; readonly validators?: Partial<ListState> };

async function fromOrigin(subscription: ListSubscription, state: ListState): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (state.version !== null && state.url === subscription.url) {
    if (state.etag !== null) headers['if-none-match'] = state.etag;
    if (state.lastModified !== null) headers['if-modified-since'] = state.lastModified;
  }
  const answer = await fetchBody(subscription.url, headers);
  if (answer.status === 304 && state.version !== null) return { kind: 'unchanged', bytes: answer.wireBytes };
  if (answer.status !== 200) throw new ListRefusal('LACHAN_LIST_HTTP', `${subscription.url} trả lời HTTP ${answer.status}`);
  const candidate = parseDownload(subscription.format, textOfDownload(subscription, answer.body));
  return {
    kind: 'full',
    bytes: answer.wireBytes,
    candidate,
    validators: { etag: header(answer.headers, 'etag'), lastModified: header(answer.headers, 'last-modified'), url: subscription.url },
  };
}

/** A download as list text: a UT1 category archive (`NAME.tar.gz`) gives its `domains` and `urls`. */
function textOfDownload(subscription: ListSubscription, body: Buffer): string {
  if (subscription.format !== 'ut1' || !(isGzip(body) || body.subarray(257, 262).toString('latin1') === 'ustar')) return body.toString('utf8');
  let text: string | null;
  try {
    text = ut1ArchiveText(body, MAX_BODY_BYTES);
  } catch (error) {
    throw new ListRefusal('LACHAN_LIST_UNPARSEABLE', `không đọc được tệp nén UT1: ${(error as Error).message}`);
  }
  if (text === null) throw new ListRefusal('LACHAN_LIST_UNPARSEABLE', 'tệp nén UT1 không có tệp domains hay urls');
  return text;
}

/** The collector's answer, or null when it does not mirror this list (the gateway then fetches it itself). */
async function fromCentral(central: CentralListSource, subscription: ListSubscription, state: ListState, dataDir: string): Promise<Answer | null> {
  const base = central.url.endsWith('/') ? central.url : `${central.url}/`;
  const url = new URL(`api/v1/lists/${encodeURIComponent(subscription.name)}`, base);
  if (state.version !== null) url.searchParams.set('since', state.version);
  const token = readFileSync(central.tokenFile, 'utf8').trim();
  const answer = await fetchBody(url, { authorization: `Bearer ${token}` });
  if (answer.status === 404) return null;
  if (answer.status === 304 && state.version !== null) return { kind: 'unchanged', bytes: answer.wireBytes };
  if (answer.status !== 200) throw new ListRefusal('LACHAN_LIST_HTTP', `máy chủ huyện trả lời HTTP ${answer.status} cho ${subscription.name}`);
  const version = header(answer.headers, 'x-lachan-list-version');
  const kind = header(answer.headers, 'x-lachan-list-kind');
  const text = answer.body.toString('utf8');
  let candidate: ListVersion;
  if (kind === 'delta') {
    const from = header(answer.headers, 'x-lachan-list-base');
    const held = from === null || from !== state.version ? null : await readVersionText(dataDir, subscription.name, from);
    if (held === null) throw new ListRefusal('LACHAN_LIST_DELTA', `máy chủ huyện gửi phần thay đổi từ ${from ?? '?'}, không phải phiên bản đang giữ`);
    candidate = applyDelta(held, text);
  } else {
    candidate = listVersionOf(entriesOf(text));
  }
  // The version names the content: a delta applied to the wrong base, or a body cut short, does not add up to it.
  if (candidate.version !== version)
    throw new ListRefusal(
      'LACHAN_LIST_DELTA',
      `dữ liệu máy chủ huyện gửi cho ${subscription.name} cho ra phiên bản ${candidate.version}, không phải ${version ?? '?'}`,
    );
  // The list's own validators no longer describe the version held.
  return { kind: kind === 'delta' ? 'delta' : 'full', bytes: answer.wireBytes, candidate, validators: { etag: null, lastModified: null, url: null } };
}

/** Updates one list; never throws for what the network or the list does (that is the result). */
export async function updateList(subscription: ListSubscription, options: UpdateOptions): Promise<ListUpdateResult> {
  const now = options.now ?? Date.now;
  const state = await readState(options.dataDir, subscription.name);
  let via: 'direct' | 'central' = options.central ? 'central' : 'direct';
  const result = (outcome: UpdateOutcome, s: ListState, bytes: number, kind: ListUpdateResult['kind']): ListUpdateResult => ({
    name: subscription.name,
    outcome,
    version: s.version,
    entries: s.entries,
    error: s.lastError,
    bytes,
    via,
    kind,
  });
  let answer: Answer;
  try {
    const central = options.central ? await fromCentral(options.central, subscription, state, options.dataDir) : null;
    if (central === null) via = 'direct';
    answer = central ?? (await fromOrigin(subscription, state));
  } catch (error) {
    const refusal =
      error instanceof ListRefusal
        ? error
        : new ListRefusal(
            'LACHAN_LIST_UNREACHABLE',
            `không kết nối được ${via === 'central' ? 'máy chủ huyện' : subscription.url}: ${(error as Error).message}`,
          );
    const failed = await recordFailure(options.dataDir, state, refusal, now());
    return result(refusal.code === 'LACHAN_LIST_UNREACHABLE' ? 'unreachable' : 'refused', failed, 0, 'full');
  }
  if (answer.kind === 'unchanged' || (answer.candidate.version === state.version && state.version !== null)) {
    const current: ListState = { ...state, ...answer.validators, checkedAt: now(), attemptedAt: now(), lastError: null };
    await writeState(options.dataDir, current);
    return result('current', current, answer.bytes, 'unchanged');
  }
  try {
    checkCompiles(answer.candidate);
    checkNotShrunk(answer.candidate, state.version === null ? null : state);
  } catch (error) {
    const refusal = error instanceof ListRefusal ? error : new ListRefusal('LACHAN_LIST_UNCOMPILABLE', (error as Error).message);
    const failed = await recordFailure(options.dataDir, state, refusal, now());
    return result('refused', failed, answer.bytes, answer.kind);
  }
  const applied = await applyVersion(options.dataDir, state, answer.candidate, answer.validators ?? {}, options.keep ?? 2, now());
  return result('updated', applied, answer.bytes, answer.kind);
}

async function recordFailure(dataDir: string, state: ListState, refusal: ListRefusal, time: number): Promise<ListState> {
  const failed: ListState = { ...state, attemptedAt: time, lastError: { time, code: refusal.code, message: refusal.message }, failures: state.failures + 1 };
  await writeState(dataDir, failed);
  return failed;
}

/** Lists whose refresh interval has passed since the last attempt (sooner after a failure, at most 15 minutes). */
export function dueLists(subscriptions: readonly ListSubscription[], states: ReadonlyMap<string, ListState>, now: number): ListSubscription[] {
  return subscriptions.filter((subscription) => {
    const state = states.get(subscription.name);
    if (state === undefined || state.attemptedAt === null || (state.version === null && state.lastError === null)) return true;
    const interval = state.lastError === null ? subscription.refreshMs : Math.min(subscription.refreshMs, 15 * 60_000);
    return now - state.attemptedAt >= interval;
  });
}
