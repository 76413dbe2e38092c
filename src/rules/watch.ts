import { watch, type FSWatcher } from 'node:fs';

const DEBOUNCE_MS = 300;

/**
 * Calls `onChange` once a burst of file changes under the rules folder settles
 * (editors write a file in several steps; an import rewrites thousands of lines).
 */
export function watchRules(rulesDir: string, onChange: () => void): { close(): void } {
  let timer: NodeJS.Timeout | null = null;
  const fire = (): void => {
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      onChange();
    }, DEBOUNCE_MS);
    timer.unref();
  };
  let watcher: FSWatcher | null = watch(rulesDir, { recursive: true, persistent: false }, fire);
  // A watcher error (folder removed, too many watches) must not crash the proxy;
  // SIGHUP still reloads.
  watcher.on('error', () => {
    watcher?.close();
    watcher = null;
  });
  return {
    close(): void {
      if (timer !== null) clearTimeout(timer);
      watcher?.close();
      watcher = null;
    },
  };
}
