/**
 * Turns what the proxy saw into safeguarding signals (docs/safeguarding.md): a decision
 * in category self-harm, a search or a page scoring in self-harm, and a shipped phrase
 * in search terms or a blocked page's title. Runs on the request path: the checks that
 * find nothing allocate nothing; a signal is handed to the store, which writes it after
 * the turn. One request gives at most one signal, the strongest of what it showed.
 */
import type { ContentVerdict } from '../content/profile.js';
import { searchQueryOf } from '../content/search-terms.js';
import type { Decision } from '../policy/types.js';
import type { Flow } from '../proxy/flow.js';
import { BASE_SEVERITY, REPEAT_WINDOW_MS } from './severity.js';
import type { SafeguardingPhrases } from './phrases.js';
import { isAlertCategory, type AlertCategory, type Signal, type SignalKind, type SeverityRank } from './types.js';

/** The policy category whose decisions and content verdicts are signals. */
const SELF_HARM = 'self-harm';
/** Google's suggestions as a child types: parts of a search, not searches. */
const SUGGESTION_PATH = '/complete/';
const REPEATS_LIMIT = 4096;

export interface SignalSink {
  add(signal: Signal): void;
}

export class SafeguardingSignals {
  /** `device category trigger` → when last counted, so a repeat within REPEAT_WINDOW_MS is one signal. */
  readonly #recent = new Map<string, number>();

  constructor(
    private readonly phrases: () => SafeguardingPhrases,
    private readonly sink: SignalSink,
    /** The pseudonymous device id of an address or lab login (the keyed hash events carry). */
    private readonly pseudonym: (address: string) => string,
  ) {}

  /** ProxyHooks.onDecision: a decision in self-harm, blocked or allowed. */
  readonly onDecision = (flow: Flow, decision: Decision): void => {
    if (decision.category !== SELF_HARM) return;
    const { target } = flow;
    const query = target.pathAndQuery.includes('?') ? searchQueryOf(target.host, target.pathAndQuery) : null;
    if (query !== null) return this.onSearch(flow, query, null, true);
    this.#raise(flow, SELF_HARM, 'request', BASE_SEVERITY.request, target.host);
  };

  /**
   * ProxyHooks.onSearch: search terms, with the content verdict on them (null: they
   * stayed under the limit). `decidedSelfHarm`: the URL itself was decided in self-harm.
   */
  readonly onSearch = (flow: Flow, query: string, verdict: ContentVerdict | null, decidedSelfHarm = false): void => {
    if (flow.target.path.startsWith(SUGGESTION_PATH)) return;
    const phrase = this.phrases().match(query);
    const scored = decidedSelfHarm || verdict?.category === SELF_HARM;
    // A phrase names the category and severity, unless it is a mild one of another category than the score's.
    if (phrase !== null && (!scored || phrase.category === SELF_HARM || phrase.severity > BASE_SEVERITY.search)) {
      const base = scored && phrase.category === SELF_HARM ? (Math.max(phrase.severity, BASE_SEVERITY.search) as SeverityRank) : phrase.severity;
      return this.#raise(flow, phrase.category, 'phrase', base, query);
    }
    if (scored) this.#raise(flow, SELF_HARM, 'search', BASE_SEVERITY.search, query);
  };

  /** ProxyHooks.onContentBlock: a page blocked by content inspection; its title is read for the phrases too. */
  readonly onContentBlock = (flow: Flow, verdict: ContentVerdict): void => {
    const title = verdict.title ?? '';
    const phrase = title === '' ? null : this.phrases().match(title);
    if (phrase !== null) return this.#raise(flow, phrase.category, 'phrase', phrase.severity, title);
    if (verdict.category === SELF_HARM) this.#raise(flow, SELF_HARM, 'content', BASE_SEVERITY.content, title === '' ? flow.target.host : title);
  };

  #raise(flow: Flow, category: string, kind: SignalKind, base: SeverityRank, trigger: string): void {
    if (!isAlertCategory(category)) return;
    const address = flow.client.address;
    const device = this.pseudonym(address);
    const key = `${device} ${category} ${trigger}`;
    const last = this.#recent.get(key);
    if (last !== undefined && flow.time - last < REPEAT_WINDOW_MS && flow.time >= last) return;
    if (this.#recent.size >= REPEATS_LIMIT) this.#recent.clear();
    this.#recent.set(key, flow.time);
    this.sink.add({
      time: flow.time,
      device,
      address,
      profile: flow.client.profile,
      category: category as AlertCategory,
      kind,
      base,
      trigger: trigger.trim(),
      host: flow.target.host,
    });
  }
}
