/**
 * Safeguarding on the gateway (docs/safeguarding.md), as `lachan serve` wires it into
 * one proxy process: the shipped phrases (reloaded with the rules; a broken file is
 * refused and the phrases in force keep serving), the signal hooks, the alert store.
 */
import type { ProxyHooks } from '../proxy/hooks.js';
import { RulesLoadError, formatProblem } from '../rules/problems.js';
import { loadSafeguardingPhrases, type SafeguardingPhrases } from './phrases.js';
import { SafeguardingSignals } from './signals.js';
import { AlertStore, type AlertStoreLogger } from './store.js';

export interface SafeguardingOptions {
  readonly rulesDir: string;
  readonly dataDir: string;
  readonly shipping: boolean;
  readonly logger: AlertStoreLogger;
  readonly pseudonym: (address: string) => string;
  /** An alert was created or escalated (written): wake the shipper. */
  readonly onAlert: () => void;
}

export interface Safeguarding {
  readonly hooks: Pick<ProxyHooks, 'onDecision' | 'onSearch' | 'onContentBlock'>;
  readonly store: AlertStore;
  /** Loads the phrases again; a file with errors is logged with FILE:LINE and the phrases in force stay. */
  reload(): Promise<void>;
  close(): void;
}

/** Throws RulesLoadError when the shipped phrases do not load (serve refuses to start, as for any rules file). */
export async function startSafeguarding(options: SafeguardingOptions): Promise<Safeguarding> {
  let phrases: SafeguardingPhrases = await loadSafeguardingPhrases(options.rulesDir);
  const { logger } = options;
  logger.info({ phrases: phrases.size, files: phrases.files }, 'safeguarding phrases loaded');
  const store = new AlertStore({ dataDir: options.dataDir, shipping: options.shipping, logger, onChanged: options.onAlert });
  const signals = new SafeguardingSignals(() => phrases, store, options.pseudonym);
  return {
    hooks: { onDecision: signals.onDecision, onSearch: signals.onSearch, onContentBlock: signals.onContentBlock },
    store,
    reload: async () => {
      try {
        phrases = await loadSafeguardingPhrases(options.rulesDir);
      } catch (error) {
        const problems = error instanceof RulesLoadError ? error.problems.filter((p) => p.severity === 'error').map(formatProblem) : [(error as Error).message];
        logger.error({ problems }, 'safeguarding phrases refused; the phrases already loaded keep serving');
      }
    },
    close: () => store.close(),
  };
}
