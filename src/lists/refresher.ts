import { readListsConfig, type ListSubscription } from './config.js';
import { readState, readStateSync, type ListState } from './store.js';
import { dueLists, type CentralListSource, type ListUpdateResult } from './update.js';
import { updateListInThread } from './update-thread.js';

export interface RefresherLogger {
  debug(object: object, message?: string): void;
  info(object: object, message?: string): void;
  warn(object: object, message?: string): void;
}

export interface RefresherOptions {
  /** The lists.yaml to follow; re-read at every tick, so a new subscription starts without a restart. */
  readonly listsFile: string;
  readonly dataDir: string;
  readonly central?: CentralListSource | null;
  /** Versions kept on disk per list. */
  readonly keep?: number;
  readonly logger: RefresherLogger;
  /** Called when a version in force changed (here or by a `lachan lists update` run from cron). */
  readonly onChange: () => void;
  /** Longest wait between two looks at what is due (default 30 s). */
  readonly maxTickMs?: number;
}

const MIN_TICK_MS = 1_000;

/** Logs one update's outcome: a refusal is a warning with its reason, the list in force named. */
export function logUpdate(logger: RefresherLogger, result: ListUpdateResult): void {
  const fields = { list: result.name, version: result.version, entries: result.entries, via: result.via, kind: result.kind, bytes: result.bytes };
  if (result.outcome === 'updated') logger.info(fields, 'list updated');
  else if (result.outcome === 'current') logger.debug(fields, 'list current');
  else logger.warn({ ...fields, code: result.error?.code, err: result.error?.message }, 'list update refused; the last good version keeps serving');
}

/**
 * Refreshes each subscribed list when its interval is due, one list at a time (a
 * school's uplink is shared with the classrooms), and calls onChange when a version in
 * force changed so the running policy reloads (a reload yields a whole policy or keeps
 * the one serving).
 */
export function startListRefresher(options: RefresherOptions): { stop(): void; tick(): Promise<void> } {
  const seen = new Map<string, string | null>();
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> | null = null;

  const schedule = (subscriptions: readonly ListSubscription[]): void => {
    if (stopped) return;
    const shortest = subscriptions.reduce((min, s) => Math.min(min, s.refreshMs), options.maxTickMs ?? 30_000);
    timer = setTimeout(() => void tick(), Math.max(MIN_TICK_MS, shortest));
    timer.unref();
  };

  const run = async (): Promise<readonly ListSubscription[]> => {
    let subscriptions: ListSubscription[];
    try {
      subscriptions = await readListsConfig(options.listsFile);
    } catch (error) {
      options.logger.warn({ err: (error as Error).message }, 'lists.yaml refused; lists are not refreshed until it is fixed');
      return [];
    }
    const states = new Map<string, ListState>();
    for (const s of subscriptions) states.set(s.name, await readState(options.dataDir, s.name));
    for (const subscription of dueLists(subscriptions, states, Date.now())) {
      if (stopped) break;
      logUpdate(options.logger, await updateListInThread(subscription, { dataDir: options.dataDir, central: options.central ?? null, keep: options.keep }));
    }
    let changed = false;
    for (const s of subscriptions) {
      const version = (await readState(options.dataDir, s.name)).version;
      if (seen.has(s.name) ? seen.get(s.name) !== version : version !== null) changed = true;
      seen.set(s.name, version);
    }
    if (changed && !stopped) options.onChange();
    return subscriptions;
  };

  const tick = (): Promise<void> => {
    if (timer !== null) clearTimeout(timer);
    running ??= run()
      .catch((error: Error): readonly ListSubscription[] => {
        options.logger.warn({ err: error.message }, 'list refresh failed');
        return [];
      })
      .then((subscriptions) => schedule(subscriptions))
      .finally(() => {
        running = null;
      });
    return running;
  };

  // The versions the policy was loaded with at start count as seen.
  void readListsConfig(options.listsFile)
    .then(async (subscriptions) => {
      for (const s of subscriptions) seen.set(s.name, (await readState(options.dataDir, s.name)).version);
    })
    .catch(() => undefined)
    .finally(() => void tick());

  return {
    stop(): void {
      stopped = true;
      if (timer !== null) clearTimeout(timer);
    },
    tick,
  };
}

/** Prometheus lines for the subscribed lists: age of each version in force, entries, failures. */
export function listMetricLines(subscriptions: readonly ListSubscription[], dataDir: string, now = Date.now()): string[] {
  const lines = [
    '# HELP lachan_list_age_seconds Time since the source last confirmed or delivered the version in force (-1: none yet).',
    '# TYPE lachan_list_age_seconds gauge',
  ];
  const states = subscriptions.map((s) => readStateSync(dataDir, s.name));
  const label = (name: string): string => name.replace(/[\\"\n]/g, '_');
  for (const state of states)
    lines.push(`lachan_list_age_seconds{list="${label(state.name)}"} ${state.checkedAt === null ? -1 : Math.round((now - state.checkedAt) / 1000)}`);
  lines.push('# HELP lachan_list_entries Entries of the version in force.', '# TYPE lachan_list_entries gauge');
  for (const state of states) lines.push(`lachan_list_entries{list="${label(state.name)}",version="${state.version ?? ''}"} ${state.entries}`);
  lines.push(
    '# HELP lachan_list_update_failures_total Refused or failed list updates (the last good version kept serving).',
    '# TYPE lachan_list_update_failures_total counter',
  );
  for (const state of states) lines.push(`lachan_list_update_failures_total{list="${label(state.name)}"} ${state.failures}`);
  return lines;
}
