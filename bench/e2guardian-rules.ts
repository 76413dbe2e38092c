/**
 * A rules folder for reading pages against a phrase list too large for 16-bit automaton
 * rows (bench/content.ts `--rules DIR --profile bench`):
 *
 *   node dist/bench/e2guardian-rules.js DIR
 *
 * DIR gets the shipped phrase categories (adult, gambling, drugs, violence, self-harm)
 * and `e2guardian-debian`, the phrases Debian's e2guardian enables, converted
 * (bench/lib/e2guardian.ts, debianPhrasesForLachan; needs /etc/e2guardian). Profile
 * `bench` blocks the shipped categories at thpt's limit, 150, and reads with all the
 * phrases (one set per policy), so the bench's news pages are read to their end: the
 * Debian lists alone score most of them far past any limit (`*anal*` is in "analysis").
 * Profile `e2guardian` blocks all six at 60, as bench:proxy's inspection phase does; it
 * is also what makes the loader read the sixth category. Run from the repository root.
 */
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { writeDebianCategory } from './lib/e2guardian.js';

const SHIPPED = ['adult', 'gambling', 'drugs', 'violence', 'self-harm'];
const DEBIAN_CATEGORY = 'e2guardian-debian';

const dir = process.argv[2];
if (dir === undefined || existsSync(dir)) throw new Error('usage: node dist/bench/e2guardian-rules.js DIR (a folder that does not exist yet)');
for (const category of SHIPPED) {
  mkdirSync(path.join(dir, 'categories', category), { recursive: true });
  copyFileSync(path.join('rules/categories', category, 'phrases'), path.join(dir, 'categories', category, 'phrases'));
}
const count = writeDebianCategory(dir, DEBIAN_CATEGORY);
const profile = (id: string, categories: readonly string[], limit: number): string =>
  `  ${id}:\n    name: "${id}"\n    block_categories: [${categories.join(', ')}]\n    content_limit: ${limit}\n`;
writeFileSync(
  path.join(dir, 'policy.yaml'),
  `version: 1\ndefault_profile: bench\nprofiles:\n${profile('bench', SHIPPED, 150)}${profile('e2guardian', [...SHIPPED, DEBIAN_CATEGORY], 60)}`,
);
console.log(`${dir}: the shipped phrases and ${count} of Debian's e2guardian lists, profiles bench and e2guardian`);
