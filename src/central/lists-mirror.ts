/**
 * The collector's mirror of the district's subscribed lists. It fetches each upstream
 * list once for every school (with the same checks a gateway applies: a version that
 * does not parse, compile, or lost more than half its entries is refused), keeps the
 * last versions, and answers the schools:
 *
 *   GET /api/v1/lists/NAME?since=VERSION     school token
 *     304                       VERSION is the version in force
 *     200 X-Lachan-List-Kind: delta, X-Lachan-List-Base: VERSION
 *                               `+entry` / `-entry` lines, when VERSION is still kept
 *     200 X-Lachan-List-Kind: full
 *                               every entry, one a line, otherwise
 *     X-Lachan-List-Version names the version the answer leads to (the gateway checks
 *     that the content it rebuilt hashes to it); gzip when the gateway accepts it.
 *     404 when the district does not mirror NAME (the gateway then fetches it itself),
 *     503 before the first version arrived.
 *
 * Each request's `since` is what the school holds: the mirror remembers it per school
 * and list, for the dashboard page `/lists` (and `GET /api/v1/lists`), which flags
 * schools whose lists are stale.
 *
 * Where versions and the schools' reports are kept is a ListsBacking: files under the
 * data folder here, the database for collector processes sharing PostgreSQL
 * (lists-mirror-pg.ts), so every process answers from the same versions.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rename, writeFile, mkdir } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { readListsConfig, type ListSubscription } from '../lists/config.js';
import { diffVersions } from '../lists/entries.js';
import { startListRefresher, type RefresherLogger } from '../lists/refresher.js';
import { readState, readVersionText, type ListState } from '../lists/store.js';
import { HttpError, sendJson } from './http.js';

/** Where the mirror's versions and the schools' reports live, and who fetches upstream. */
export interface ListsBacking {
  state(name: string): Promise<ListState>;
  versionText(name: string, version: string): Promise<string | null>;
  /** Records what a school holds of a list (`since`, null for nothing). */
  report(schoolId: string, name: string, version: string | null): Promise<void>;
  reports(schoolIds: readonly string[]): Promise<ReadonlyMap<string, ReadonlyMap<string, SchoolListReport>>>;
  /** Fetches what is due now. */
  refreshNow(): Promise<void>;
  stop(): void;
}

export interface ListsMirrorOptions {
  /** The collector's data folder: versions go to `<data>/lists/`. */
  readonly dataDir: string;
  /** The district's lists.yaml (same format as a school's). */
  readonly listsFile: string;
  readonly logger: RefresherLogger;
  /** Versions kept per list for deltas (default 30: a month of daily updates). */
  readonly keep?: number;
  /** Another home for versions and reports than the data folder (lists-mirror-pg.ts). */
  readonly backing?: ListsBacking;
}

export const DEFAULT_KEPT_VERSIONS = 30;

/** What a school last said it holds of one list. */
export interface SchoolListReport {
  readonly version: string | null;
  readonly seenAt: number;
}

export interface MirroredList {
  readonly name: string;
  readonly category: string;
  readonly refresh: string;
  readonly refreshMs: number;
  readonly version: string | null;
  readonly entries: number;
  readonly updatedAt: number | null;
  readonly checkedAt: number | null;
  readonly lastError: ListState['lastError'];
}

export interface SchoolListStatus {
  readonly list: string;
  readonly version: string | null;
  readonly seenAt: number | null;
  readonly stale: boolean;
}

/** A file-backed mirror's reports, under the data folder (read again by `central migrate`). */
export const REPORTS_FILE = 'lists-schools.json';
const CACHED_ANSWERS = 64;
/** Bound on the cached answers' bytes: a few versions of the largest public lists. */
const CACHED_BYTES = 128 * 1024 * 1024;
const GZIP_FROM_BYTES = 1024;

interface Answer {
  readonly kind: 'full' | 'delta';
  readonly body: Buffer;
  readonly gzip: Buffer | null;
}

export class ListsMirror {
  readonly #options: ListsMirrorOptions;
  readonly #backing: ListsBacking;
  readonly #answers = new Map<string, Answer>();
  #cachedBytes = 0;

  constructor(options: ListsMirrorOptions) {
    this.#options = options;
    this.#backing = options.backing ?? new FileBacking(options, () => this.#forgetAnswers());
  }

  #forgetAnswers(): void {
    this.#answers.clear();
    this.#cachedBytes = 0;
  }

  stop(): void {
    this.#backing.stop();
  }

  /** Fetches what is due now (tests, and an administrator who just edited lists.yaml). */
  refreshNow(): Promise<void> {
    return this.#backing.refreshNow();
  }

  /** The district's subscriptions; null while its lists.yaml has errors (the refresher logs them). */
  async #subscriptions(): Promise<ListSubscription[] | null> {
    return readListsConfig(this.#options.listsFile).catch(() => null);
  }

  /** `GET /api/v1/lists/NAME?since=VERSION` for a school already authenticated. */
  async serve(request: IncomingMessage, response: ServerResponse, name: string, since: string | null, schoolId: string): Promise<void> {
    const subscriptions = await this.#subscriptions();
    // Not a 404: that would send every school to the list's own address over its slow link.
    if (subscriptions === null) throw new HttpError(503, 'not_ready', "the district's lists.yaml has errors; ask again later", { 'retry-after': '300' });
    const subscription = subscriptions.find((s) => s.name === name);
    if (subscription === undefined) throw new HttpError(404, 'not_found', `the district does not mirror a list named "${name}"`);
    if (since !== null && !/^[0-9a-f]{12}$/.test(since)) throw new HttpError(400, 'bad_request', 'since: a list version (12 hex digits)');
    await this.#backing.report(schoolId, name, since);
    const state = await this.#backing.state(name);
    if (state.version === null) throw new HttpError(503, 'not_ready', `list "${name}" has not been fetched yet`, { 'retry-after': '300' });
    const headers: Record<string, string> = { 'x-lachan-list-version': state.version, 'cache-control': 'no-store' };
    if (since === state.version) {
      response.writeHead(304, headers);
      return void response.end();
    }
    const answer = await this.#answer(name, state, since);
    if (answer === null) throw new HttpError(503, 'not_ready', `list "${name}" is being updated; ask again`, { 'retry-after': '5' });
    headers['x-lachan-list-kind'] = answer.kind;
    if (answer.kind === 'delta') headers['x-lachan-list-base'] = since!;
    const gzip = answer.gzip !== null && /\bgzip\b/.test(String(request.headers['accept-encoding'] ?? ''));
    const body = gzip ? answer.gzip! : answer.body;
    if (gzip) headers['content-encoding'] = 'gzip';
    response.writeHead(200, { ...headers, 'content-type': 'text/plain; charset=utf-8', 'content-length': String(body.length), vary: 'accept-encoding' });
    response.end(body);
  }

  /**
   * The delta from `since` when that version is still kept and the delta is the smaller,
   * else the whole list. Answers are cached (many schools ask the same question after
   * an update): one full answer per version, whatever `since` the schools held.
   */
  async #answer(name: string, state: ListState, since: string | null): Promise<Answer | null> {
    const version = state.version!;
    const deltaKey = since !== null && state.history.includes(since) ? `${name}\u0000${since}\u0000${version}` : null;
    const fullKey = `${name}\u0000\u0000${version}`;
    const cached = this.#answers.get(deltaKey ?? fullKey);
    if (cached !== undefined) return cached;
    const current = await this.#backing.versionText(name, version);
    if (current === null) return null;
    if (deltaKey !== null) {
      const base = await this.#backing.versionText(name, since!);
      const delta = base === null ? null : diffVersions(base, current);
      if (delta !== null && Buffer.byteLength(delta) < Buffer.byteLength(current)) return this.#remember(deltaKey, pack('delta', delta));
    }
    return this.#answers.get(fullKey) ?? this.#remember(fullKey, pack('full', current));
  }

  #remember(key: string, answer: Answer): Answer {
    const size = (a: Answer): number => a.body.length + (a.gzip?.length ?? 0);
    this.#answers.set(key, answer);
    this.#cachedBytes += size(answer);
    // Oldest first, keeping at least the answer just made.
    for (const [oldKey, old] of this.#answers) {
      if (this.#answers.size <= 1 || (this.#answers.size <= CACHED_ANSWERS && this.#cachedBytes <= CACHED_BYTES)) break;
      this.#answers.delete(oldKey);
      this.#cachedBytes -= size(old);
    }
    return answer;
  }

  /** The mirrored lists and, per school, what it holds of each and whether that is stale. */
  async overview(schoolIds: readonly string[], now = Date.now()): Promise<{ lists: MirroredList[]; schools: Map<string, SchoolListStatus[]> }> {
    const lists: MirroredList[] = [];
    const states = new Map<string, ListState>();
    for (const s of (await this.#subscriptions()) ?? []) {
      const state = await this.#backing.state(s.name);
      states.set(s.name, state);
      lists.push({
        name: s.name,
        category: s.category,
        refresh: s.refresh,
        refreshMs: s.refreshMs,
        version: state.version,
        entries: state.entries,
        updatedAt: state.updatedAt,
        checkedAt: state.checkedAt,
        lastError: state.lastError,
      });
    }
    const schools = new Map<string, SchoolListStatus[]>();
    const reported = await this.#backing.reports(schoolIds);
    for (const school of schoolIds) {
      const reports = reported.get(school);
      schools.set(
        school,
        lists.map((list) => {
          const report = reports?.get(list.name) ?? null;
          return {
            list: list.name,
            version: report?.version ?? null,
            seenAt: report?.seenAt ?? null,
            stale: isStale(list, states.get(list.name)!, report, now),
          };
        }),
      );
    }
    return { lists, schools };
  }
}

/**
 * A school's copy is stale when it has not asked for two refresh intervals, or still
 * holds an older version two intervals after the current one arrived (it had its
 * chances, and refused or could not apply it).
 */
function isStale(list: MirroredList, state: ListState, report: SchoolListReport | null, now: number): boolean {
  if (list.version === null) return false;
  if (report === null) return true;
  const grace = 2 * list.refreshMs;
  if (now - report.seenAt > grace) return true;
  if (report.version === list.version) return false;
  const since = state.appliedAt[list.version] ?? state.updatedAt ?? now;
  return now - since > grace;
}

function pack(kind: Answer['kind'], text: string): Answer {
  const body = Buffer.from(text, 'utf8');
  return { kind, body, gzip: body.length >= GZIP_FROM_BYTES ? gzipSync(body) : null };
}

/**
 * One collector process on its data folder: versions under `<data>/lists/` (the
 * refresher a gateway runs, keeping more versions), reports in `<data>/lists-schools.json`
 * (written a second after a poll, and at stop).
 */
class FileBacking implements ListsBacking {
  readonly #dataDir: string;
  readonly #logger: RefresherLogger;
  readonly #refresher: { stop(): void; tick(): Promise<void> };
  readonly #reports: Map<string, Map<string, SchoolListReport>>;
  #saving: NodeJS.Timeout | null = null;

  constructor(options: ListsMirrorOptions, onChange: () => void) {
    this.#dataDir = options.dataDir;
    this.#logger = options.logger;
    this.#reports = loadReports(path.join(options.dataDir, REPORTS_FILE));
    this.#refresher = startListRefresher({
      listsFile: options.listsFile,
      dataDir: options.dataDir,
      keep: options.keep ?? DEFAULT_KEPT_VERSIONS,
      logger: options.logger,
      onChange,
    });
  }

  state(name: string): Promise<ListState> {
    return readState(this.#dataDir, name);
  }

  versionText(name: string, version: string): Promise<string | null> {
    return readVersionText(this.#dataDir, name, version);
  }

  async report(schoolId: string, name: string, version: string | null): Promise<void> {
    let lists = this.#reports.get(schoolId);
    if (lists === undefined) this.#reports.set(schoolId, (lists = new Map()));
    lists.set(name, { version, seenAt: Date.now() });
    this.#saving ??= setTimeout(() => {
      this.#saving = null;
      void this.#save();
    }, 1_000);
  }

  async reports(): Promise<ReadonlyMap<string, ReadonlyMap<string, SchoolListReport>>> {
    return this.#reports;
  }

  refreshNow(): Promise<void> {
    return this.#refresher.tick();
  }

  stop(): void {
    this.#refresher.stop();
    if (this.#saving !== null) {
      clearTimeout(this.#saving);
      void this.#save();
    }
  }

  async #save(): Promise<void> {
    const object: Record<string, Record<string, SchoolListReport>> = {};
    for (const [school, lists] of this.#reports) object[school] = Object.fromEntries(lists);
    const file = path.join(this.#dataDir, REPORTS_FILE);
    const temporary = `${file}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await mkdir(this.#dataDir, { recursive: true });
      await writeFile(temporary, JSON.stringify(object));
      await rename(temporary, file);
    } catch (error) {
      this.#logger.warn({ err: (error as Error).message }, "cannot save the schools' list versions");
    }
  }
}

export function loadReports(file: string): Map<string, Map<string, SchoolListReport>> {
  const reports = new Map<string, Map<string, SchoolListReport>>();
  try {
    const object = JSON.parse(readFileSync(file, 'utf8')) as Record<string, Record<string, SchoolListReport>>;
    for (const [school, lists] of Object.entries(object)) reports.set(school, new Map(Object.entries(lists)));
  } catch {
    // No reports yet (or an unreadable file): they come back with the next polls.
  }
  return reports;
}

/** `GET /api/v1/lists`: the overview as JSON for scripts. */
export async function sendListsOverview(mirror: ListsMirror, response: ServerResponse, schoolIds: readonly string[]): Promise<void> {
  const { lists, schools } = await mirror.overview(schoolIds);
  sendJson(response, 200, { lists, schools: Object.fromEntries(schools) });
}
