import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let collect: (() => void) | null = null;

/**
 * Runs a full garbage collection now. After a rules reload the replaced policy's
 * tables (tens of MB of typed arrays, outside the JS heap) are garbage, but the
 * proxy's V8 flags (src/cli/v8-flags.ts) let the heap grow to four times its live
 * size before a full collection, and turn off the idle-time one: without this the
 * old tables stay resident until long after, and the next reload compiles beside
 * them too. The cluster primary, which loads the rules once only to refuse bad ones
 * before forking, drops them the same way.
 */
export function collectGarbage(): void {
  if (collect === null) {
    const exposed = (globalThis as { gc?: () => void }).gc;
    if (exposed !== undefined) collect = exposed;
    else {
      // `gc` is exposed to contexts created after the flag is set.
      setFlagsFromString('--expose-gc');
      collect = runInNewContext('gc') as () => void;
    }
  }
  // The first collection finds the old tables dead and hands their memory to a
  // background sweeper; the second waits for it, so the memory is free when this returns.
  collect();
  collect();
}
