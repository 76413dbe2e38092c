/**
 * What content inspection needs of one profile (docs/contract.md §8): its
 * content_limit, the categories it blocks that have phrases, and the verdict rule.
 * Compiled once per policy and profile, then shared by every response and search
 * query of that profile.
 */
import type { Policy } from '../policy/engine.js';
import { contentRulesOf, type PhraseScanner, type PhraseSet } from '../policy/phrases.js';
import { CATEGORY_BLOCKS } from '../policy/types.js';

/** The category a `<meta name="rating">` adult label counts in. */
export const RATING_CATEGORY = 'adult';

/** Why content was blocked: the phrase score, or the page's own adult rating label. */
export type ContentReason = 'score' | 'rating';

export interface ContentVerdict {
  readonly action: 'block';
  readonly profile: string;
  readonly category: string;
  readonly reason: ContentReason;
  /** The category's score when the verdict fell (0 for a rating label). */
  readonly score: number;
  readonly limit: number;
  /** Phrases of that category found, as written in the rules, with their weights. */
  readonly phrases: readonly string[];
  /** The page's `<title>`, if one was read (for the event and the block page). */
  readonly title: string | null;
}

export class ContentProfile {
  /** Category ids this profile blocks, so a limit check looks at these only. */
  private readonly blocked: Int32Array;
  /** Id of the adult category when this profile blocks it, else -1. */
  private readonly ratingCategory: number;

  constructor(
    readonly profile: string,
    readonly limit: number,
    readonly phrases: PhraseSet,
    private readonly categoryNames: readonly string[],
    actions: Uint8Array,
  ) {
    const blocked: number[] = [];
    for (let id = 0; id < actions.length; id++) if (actions[id] === CATEGORY_BLOCKS) blocked.push(id);
    this.blocked = Int32Array.from(blocked);
    this.ratingCategory = blocked.find((id) => categoryNames[id] === RATING_CATEGORY) ?? -1;
  }

  scanner(shortText = false): PhraseScanner {
    return this.phrases.scanner(this.categoryNames.length, shortText);
  }

  /** Hands back a page scanner whose scores nobody reads any more (PhraseSet.recycle). */
  recycle(scanner: PhraseScanner): void {
    this.phrases.recycle(scanner);
  }

  /**
   * The verdict for what `scanner` has seen: the blocked category whose score is
   * furthest over the limit, or the adult rating label, or null.
   */
  verdictOf(scanner: PhraseScanner, adultRating: boolean, title: string | null): ContentVerdict | null {
    if (adultRating && this.ratingCategory >= 0) return this.verdict(this.ratingCategory, 'rating', 0, scanner, title);
    const scores = scanner.scores;
    let best = -1;
    for (let i = 0; i < this.blocked.length; i++) {
      const id = this.blocked[i]!;
      if (scores[id]! >= this.limit && (best < 0 || scores[id]! > scores[best]!)) best = id;
    }
    return best < 0 ? null : this.verdict(best, 'score', scores[best]!, scanner, title);
  }

  private verdict(category: number, reason: ContentReason, score: number, scanner: PhraseScanner, title: string | null): ContentVerdict {
    return {
      action: 'block',
      profile: this.profile,
      category: this.categoryNames[category]!,
      reason,
      score,
      limit: this.limit,
      phrases: scanner.evidence(category),
      title,
    };
  }
}

const PROFILES = new WeakMap<Policy, Map<string, ContentProfile | null>>();

/** The content settings of a profile; null when it has no content_limit (not inspected) or does not exist. */
export function contentProfileOf(policy: Policy, profileId: string): ContentProfile | null {
  let byId = PROFILES.get(policy);
  if (byId === undefined) {
    byId = new Map();
    PROFILES.set(policy, byId);
  }
  let profile = byId.get(profileId);
  if (profile === undefined) {
    const rules = contentRulesOf(policy);
    const limit = rules.limits.get(profileId);
    const spec = policy.rules.profiles.find((p) => p.id === profileId);
    profile = limit === undefined || spec === undefined ? null : new ContentProfile(profileId, limit, rules.phrases, policy.rules.categoryNames, spec.actions);
    byId.set(profileId, profile);
  }
  return profile;
}
