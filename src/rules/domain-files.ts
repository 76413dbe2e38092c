/*
 * The domain files of a load (each loaded category's `domains`, then its bundled domain
 * lists) and their compiled sets, which a reload takes over from the serving policy
 * when the files are unchanged instead of compiling a second copy beside it: most
 * reloads change policy.yaml, a keyword list, the overlay or a subscription, and a
 * second copy of millions of domains is most of what a reload costs in memory.
 *
 * The files are compiled in two tiers, large files and the rest, each kept or compiled
 * on its own: a school editing its own short `domains` file compiles the small tier only,
 * not the millions of entries of the large lists beside it. The engine decides the
 * tiers and the load's other rules as one set (DomainSet.combine).
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { type DomainSet, DomainSetBuilder } from '../policy/domains.js';
import type { Policy } from '../policy/engine.js';
import type { BundledList } from './bundled.js';
import { countFileLines } from './lines.js';

/**
 * A file this size or larger (~40,000 domains and up: the big UT1 categories, Hagezi,
 * an import) joins the large tier. The small tier is then the hand-written files and
 * the bundled lists (gzip, none near this size): ~350,000 domains, ~6 MiB compiled.
 */
export const LARGE_DOMAIN_FILE_BYTES = 1024 * 1024;

interface Tier {
  /** Equal for two loads exactly when the tier's records would be equal. */
  readonly key: string;
  readonly files: string[];
  /** The serving policy's set of this tier, taken over; null when it compiles here. */
  readonly reused: DomainSet | null;
  builder: DomainSetBuilder | null;
}

/** The compiled tiers of a policy, for the next reload to take over. Dropped with the policy. */
const COMPILED = new WeakMap<Policy, { readonly tiers: readonly { readonly key: string; readonly set: DomainSet }[]; readonly reused: number }>();

export class DomainFiles {
  private constructor(
    private readonly ids: ReadonlyMap<string, number>,
    private readonly tierOfFile: ReadonlyMap<string, Tier>,
    private readonly tiers: readonly Tier[],
  ) {}

  /**
   * Gives the domain files of the categories to load the next file ids, in reading
   * order, and says what they are: category, path, id, and the file's identity and
   * change times. A file edited, replaced, added or removed, or a category added or
   * dropped, changes its tier's key. The identity is read before the file is, so an
   * edit made while it is read gives the next reload another key, never a stale set
   * under the new key. A tier whose key the serving policy has is reused.
   */
  static async identify(
    toLoad: readonly string[],
    available: ReadonlyMap<string, string>,
    bundled: readonly BundledList[],
    fileNames: string[],
    shown: (file: string) => string,
    serving: Policy | null,
  ): Promise<DomainFiles> {
    const ids = new Map<string, number>();
    const tierOfFile = new Map<string, Tier>();
    // Category ids follow this order: part of what every record means.
    const categories = `categories ${toLoad.join(',')}`;
    const large = { parts: [categories], files: [] as string[] };
    const small = { parts: [categories], files: [] as string[] };
    const sides = new Map<string, typeof large>();
    for (const name of toLoad) {
      const files = [
        { file: path.join(available.get(name)!, 'domains'), optional: true },
        ...bundled.filter((list) => list.kind === 'domains' && list.category === name).map((list) => ({ file: list.file, optional: false })),
      ];
      for (const { file, optional } of files) {
        let identity: string;
        let side = small;
        try {
          const info = await stat(file, { bigint: true });
          identity = `${info.dev}:${info.ino}:${info.size}:${info.mtimeNs}:${info.ctimeNs}`;
          if (info.size >= BigInt(LARGE_DOMAIN_FILE_BYTES)) side = large;
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          // An optional file that is not there has no id; any other failure is reported when it is read.
          if (code === 'ENOENT' && optional) continue;
          identity = `error ${code}`;
        }
        const fileId = fileNames.push(shown(file)) - 1;
        const at = `${name}\0${file}`;
        ids.set(at, fileId);
        sides.set(at, side);
        side.parts.push(`${at}\0${fileId}\0${identity}`);
        side.files.push(file);
      }
    }
    const previous = serving === null ? undefined : COMPILED.get(serving);
    const tiers: Tier[] = [];
    const tierOf = new Map<typeof large, Tier>();
    for (const side of [large, small]) {
      if (side.files.length === 0) continue;
      const key = side.parts.join('\n');
      const reused = previous?.tiers.find((tier) => tier.key === key)?.set ?? null;
      const tier: Tier = { key, files: side.files, reused, builder: null };
      tiers.push(tier);
      tierOf.set(side, tier);
    }
    for (const [at, side] of sides) tierOfFile.set(at, tierOf.get(side)!);
    return new DomainFiles(ids, tierOfFile, tiers);
  }

  /** Makes a builder, sized to its files' lines, for each tier not reused. */
  async prepare(): Promise<void> {
    for (const tier of this.tiers) {
      if (tier.reused !== null) continue;
      tier.builder = new DomainSetBuilder();
      let lines = 0;
      // A file that cannot be read is reported when it is loaded.
      for (const file of tier.files) lines += await countFileLines(file, file.endsWith('.gz')).catch(() => 0);
      tier.builder.reserve(lines);
    }
  }

  /** The file id of a category's domain file; undefined when it is not there. */
  idOf(category: string, file: string): number | undefined {
    return this.ids.get(`${category}\0${file}`);
  }

  /** Where a file's rules go; null when its tier is the serving policy's. */
  builderOf(category: string, file: string): DomainSetBuilder | null {
    return this.tierOfFile.get(`${category}\0${file}`)?.builder ?? null;
  }

  /** Every tier's set, reused or built now. */
  build(): DomainSet[] {
    return this.tiers.map((tier) => {
      if (tier.reused !== null) return tier.reused;
      const set = tier.builder!.build();
      tier.builder = null;
      return set;
    });
  }

  /** Keeps the tiers' sets beside `policy`, for the reload after it. */
  remember(policy: Policy, sets: readonly DomainSet[]): void {
    const reused = this.tiers.filter((tier) => tier.reused !== null).length;
    COMPILED.set(policy, { tiers: this.tiers.map((tier, i) => ({ key: tier.key, set: sets[i]! })), reused });
  }
}

/**
 * How a policy got its domain files' compiled sets: all `reused` from the policy serving
 * before it, `compiled` by its own load, `partly reused` (one tier of two), null when it
 * has none apart (lint mode). The reload's log line says it: a `compiled` reload is the
 * one that holds a second copy of every list in memory for a while.
 */
export function domainFilesOrigin(policy: Policy): 'reused' | 'partly reused' | 'compiled' | null {
  const compiled = COMPILED.get(policy);
  if (compiled === undefined) return null;
  if (compiled.reused === 0) return 'compiled';
  return compiled.reused === compiled.tiers.length ? 'reused' : 'partly reused';
}
