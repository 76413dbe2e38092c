import path from 'node:path';
import type { ListRules } from '../rules/loader.js';
import { LISTS_FILE, readListsConfig, type ListSubscription } from './config.js';
import { readState, readVersionText } from './store.js';

/** The lists.yaml of a rules folder. */
export function listsFileOf(rulesDir: string): string {
  return path.join(rulesDir, LISTS_FILE);
}

/**
 * The versions in force of the lists `RULES/lists.yaml` subscribes to, as the rules
 * loader takes them. A list not downloaded yet is simply absent (the school's own rules
 * serve meanwhile); a lists.yaml with errors throws RulesLoadError like any rule file.
 */
export async function readAppliedLists(rulesDir: string, dataDir: string, subscriptions?: readonly ListSubscription[]): Promise<ListRules[]> {
  const lists: ListRules[] = [];
  for (const subscription of subscriptions ?? (await readListsConfig(listsFileOf(rulesDir)))) {
    const state = await readState(dataDir, subscription.name);
    if (state.version === null) continue;
    // The state may have moved on between the two reads: take whichever version it names now.
    let version = state.version;
    let text = await readVersionText(dataDir, subscription.name, version);
    if (text === null) {
      const again = await readState(dataDir, subscription.name);
      if (again.version === null) continue;
      version = again.version;
      text = await readVersionText(dataDir, subscription.name, version);
      if (text === null) continue;
    }
    lists.push({ name: subscription.name, version, category: subscription.category, text });
  }
  return lists;
}
