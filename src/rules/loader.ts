/*
 * Reads a whole rules folder into one compiled Policy (docs/contract.md §3): the policy
 * file, every category folder, bundled and subscribed lists, the district overlay.
 * Over ~400 lines on purpose: each file kind has its own reader module; this file is the
 * one sequence that makes a reload all or nothing (a whole new Policy, or problems and
 * the old one keeps serving), and splitting the sequence would split that guarantee.
 */
import type { Dirent } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { DomainSet, DomainSetBuilder } from '../policy/domains.js';
import { UrlSetBuilder } from '../policy/urls.js';
import { KeywordSetBuilder } from '../policy/keywords.js';
import { canonicalRuleHost } from '../policy/hostname.js';
import { CUSTOM_CATEGORY, Policy, type CompiledRules, type PolicyOptions, type ProfileSpec } from '../policy/engine.js';
import { CATEGORY_ALLOWS, CATEGORY_BLOCKS } from '../policy/types.js';
import { parsePolicyFile, type PolicyConfig } from './policy-file.js';
import { DEFAULT_ORGANISATION, type Organisation } from './organisation.js';
import { ProblemList, RulesLoadError, type RuleProblem } from './problems.js';
import { countFileLines, forEachLinePiece, forEachRuleLine, forEachRuleSpan } from './lines.js';
import { overlayLineCount, overlaySourceName, type PolicyOverlay } from './overlay.js';
import { readBundledManifest, readBundledText, type BundledList } from './bundled.js';
import { BrandSetBuilder } from '../policy/brands.js';
import { type BrandDeriver, loadCategoryBrands } from './brands.js';
import { PhraseSetBuilder, attachContentRules } from '../policy/phrases.js';
import { addPhrasesFile } from './phrases-file.js';
import { DomainFiles } from './domain-files.js';

export { domainFilesOrigin } from './domain-files.js';

/** The rule files a category folder may hold (docs/contract.md §3). UT1 folders carry more, which we skip. */
export const CATEGORY_FILES = ['domains', 'urls', 'keywords'] as const;
export type CategoryFileKind = (typeof CATEGORY_FILES)[number];

export const NO_INSPECT_CATEGORY = 'no-inspect';
/** Category of the rules that come from the district's overlay. */
export const DISTRICT_CATEGORY = 'district';

export interface LoadOptions extends PolicyOptions {
  /**
   * Lint mode: read every category, referenced or not, and look for duplicate rules
   * (which costs memory a gateway should not spend on every reload).
   */
  readonly checkAll?: boolean;
  /** The district's signed overlay, already verified, applied on top of the local rules. */
  readonly overlay?: PolicyOverlay | null;
  /** Downloaded versions of the subscribed lists (src/lists), each joining its category. */
  readonly lists?: readonly ListRules[];
  /**
   * Called once every rule was read, before the tables compile: a gateway passes a full
   * GC, so that what reading left (list pieces, the brand derivers' tables) is freed
   * before the last tables are made beside the serving policy, not after.
   */
  readonly beforeCompile?: () => void;
  /**
   * The policy serving now. Where the domain files (every category's `domains` and the
   * bundled domain lists) are the same files, unchanged, for the same categories, the
   * new policy shares its compiled sets of them instead of compiling a second copy
   * beside it (src/rules/domain-files.ts): the common reload (policy.yaml, a keyword
   * list, the overlay, a subscription) then costs the small tables only.
   */
  readonly reuse?: Policy | null;
}

/** One subscribed list's version in force: sorted entries, a host or `host/path` a line. */
export interface ListRules {
  readonly name: string;
  readonly version: string;
  readonly category: string;
  readonly text: string;
}

export interface LoadResult {
  readonly policy: Policy | null;
  readonly problems: readonly RuleProblem[];
  readonly stats: { readonly domains: number; readonly urls: number; readonly keywords: number; readonly categories: number; readonly brands?: number };
}

/** Loads the rules folder into a Policy, or throws RulesLoadError listing every problem. */
export async function loadPolicy(rulesDir: string, options: LoadOptions = {}): Promise<Policy> {
  const result = await loadRules(rulesDir, options);
  if (result.policy === null) throw new RulesLoadError(result.problems);
  return result.policy;
}

/** Shows rule files relative to the working directory, as IT staff typed the path. */
export function displayPath(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative === '' || relative.startsWith('..') || path.isAbsolute(relative) ? file : relative;
}

/** Loads and reports; the policy is null when any error was found. */
export async function loadRules(rulesDir: string, options: LoadOptions = {}): Promise<LoadResult> {
  const problems = new ProblemList();
  const policyPath = path.join(rulesDir, 'policy.yaml');
  const policyName = displayPath(policyPath);
  const empty = { domains: 0, urls: 0, keywords: 0, categories: 0 };

  let policyText: string;
  try {
    policyText = await readFile(policyPath, 'utf8');
  } catch (error) {
    problems.error(policyName, 0, `cannot read policy file: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    return { policy: null, problems: problems.items, stats: empty };
  }
  const config = parsePolicyFile(policyText, policyName, problems);
  if (config === null) return { policy: null, problems: problems.items, stats: empty };

  const available = await listCategories(path.join(rulesDir, 'categories'));
  const referenced = referencedCategories(config, available, policyName, problems);

  const fileNames: string[] = [policyName];
  const categoryNames: string[] = [];
  const domains = new DomainSetBuilder();
  const urls = new UrlSetBuilder();
  const keywords = new KeywordSetBuilder();
  const phrases = new PhraseSetBuilder();
  const categoryIds = new Map<string, number>();
  const brands = new BrandSetBuilder();
  const brandContext = { fileNames, brands, keywords, problems, displayPath };
  // Brands are derived once every list of their category was read, subscribed ones included.
  const brandDerivers = new Map<number, { deriver: BrandDeriver; folder: string }>();

  const toLoad = options.checkAll ? [...available.keys()].sort() : [...referenced].sort();
  const bundled = await readBundledManifest(rulesDir, new Set(available.keys()), displayPath, problems);
  const streamDomains = options.checkAll !== true;
  // Category ids are given in this order, before any other: part of what a reused set's records mean.
  const domainFiles = streamDomains ? await DomainFiles.identify(toLoad, available, bundled, fileNames, displayPath, options.reuse ?? null) : null;
  await domainFiles?.prepare();
  if (streamDomains) {
    const listLines = (options.lists ?? []).reduce((sum, list) => sum + countLines(list.text), 0);
    domains.reserve(listLines + (await countDomainLines([path.join(rulesDir, 'no_inspect')])));
  }
  for (const name of toLoad) {
    const id = categoryNames.length;
    categoryNames.push(name);
    categoryIds.set(name, id);
    const folder = available.get(name)!;
    const brandDeriver = await loadCategoryBrands(folder, id, brandContext);
    for (const kind of CATEGORY_FILES) {
      const file = path.join(folder, kind);
      if (kind === 'domains' && domainFiles !== null) {
        const fileId = domainFiles.idOf(name, file);
        if (fileId !== undefined) await addDomainFile(file, id, fileId, domainFiles.builderOf(name, file), problems, brandDeriver);
        continue;
      }
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
        problems.error(displayPath(file), 0, `cannot read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
        continue;
      }
      const fileId = fileNames.length;
      fileNames.push(displayPath(file));
      addRuleFile(kind, text, fileNames[fileId]!, fileId, id, { domains, urls, keywords }, problems, options.checkAll === true);
      if (kind === 'domains') brandDeriver?.addDomainsText(text, fileId);
    }
    for (const list of bundled) {
      if (list.category !== name) continue;
      if (list.kind === 'domains' && domainFiles !== null) {
        const fileId = domainFiles.idOf(name, list.file)!;
        await addDomainFile(list.file, id, fileId, domainFiles.builderOf(name, list.file), problems, brandDeriver);
      } else {
        const fileId = await addBundledList(list, id, fileNames, { domains, urls, keywords }, problems, options.checkAll === true);
        if (list.kind === 'domains' && fileId !== null) brandDeriver?.addDomainsText(await readBundledText(list.file), fileId);
      }
    }
    if (brandDeriver !== null) brandDerivers.set(id, { deriver: brandDeriver, folder });
    const phrasesFile = path.join(folder, 'phrases'); // docs/contract.md §8
    await addPhrasesFile(phrasesFile, displayPath(phrasesFile), id, fileNames, phrases, problems);
  }

  for (const list of options.lists ?? []) addListRules(list, categoryIds, available, { domains, urls, keywords }, fileNames, problems, brandDerivers);
  for (const { deriver, folder } of brandDerivers.values()) deriver.derive(brands, fileNames.push(`${displayPath(folder)}/…`) - 1);
  // The derivers' tables are garbage before the domain set sorts and the tables compile.
  brandDerivers.clear();
  options.beforeCompile?.();

  // A profile's own lists are category rules of that profile (docs/contract.md §3): two
  // pseudo-categories each, active for that profile only.
  const customIds = new Map<string, { allow: number; block: number }>();
  const districtIds = new Map<string, { allow: number; block: number; scopedAllow: number }>();
  for (const profile of config.profiles) {
    const allow = categoryNames.push(CUSTOM_CATEGORY) - 1;
    const block = categoryNames.push(CUSTOM_CATEGORY) - 1;
    customIds.set(profile.id, { allow, block });
    for (const entry of profile.allowDomains) addCustomDomain(domains, entry.value, allow, entry.line, policyName, problems);
    for (const entry of profile.blockDomains) addCustomDomain(domains, entry.value, block, entry.line, policyName, problems);
    for (const entry of profile.blockKeywords) {
      const error = keywords.add(entry.value, block, 0, entry.line);
      if (error !== null) problems.error(policyName, entry.line, `keyword "${entry.value}": ${error}`);
    }
  }

  // The district overlay: lists per profile, as rules of a category named "district"
  // so that decisions and `lachan check` say where they came from.
  const overlay = options.overlay ?? null;
  if (overlay !== null) {
    const overlayFile = fileNames.push(overlaySourceName(overlay)) - 1;
    for (const [profileId, lists] of Object.entries(overlay.profiles)) {
      if (!customIds.has(profileId)) {
        problems.warning(fileNames[overlayFile]!, 0, `profile "${profileId}" of the district overlay is not defined here (ignored)`);
        continue;
      }
      const allow = categoryNames.push(DISTRICT_CATEGORY) - 1;
      const block = categoryNames.push(DISTRICT_CATEGORY) - 1;
      // Allows under which keyword rules keep applying (see engine.ts keywordsInsideAllow).
      const scopedAllow = categoryNames.push(DISTRICT_CATEGORY) - 1;
      districtIds.set(profileId, { allow, block, scopedAllow });
      let line = 0;
      for (const domain of lists.allow_domains ?? []) addOverlayDomain(domains, domain, allow, overlayFile, ++line, fileNames[overlayFile]!, problems);
      for (const domain of lists.block_domains ?? []) addOverlayDomain(domains, domain, block, overlayFile, ++line, fileNames[overlayFile]!, problems);
      for (const phrase of lists.block_keywords ?? []) {
        line++;
        const error = keywords.add(phrase, block, overlayFile, line);
        if (error !== null) problems.warning(fileNames[overlayFile]!, line, `keyword "${phrase}" skipped: ${error}`);
      }
      for (const allowed of lists.allow_urls ?? []) {
        line++;
        const category = allowed.keywords ? scopedAllow : allow;
        if (allowed.scope === 'site') {
          addOverlayDomain(domains, allowed.url, category, overlayFile, line, fileNames[overlayFile]!, problems);
          continue;
        }
        const error = urls.add(allowed.url, category, overlayFile, line, allowed.scope === 'page');
        if (error !== null) problems.warning(fileNames[overlayFile]!, line, `"${truncate(allowed.url)}" skipped: ${error}`);
      }
    }
    // Additions to a category join that category's own rules, so they block wherever a
    // profile here blocks the category (and nowhere else). Lines keep counting after
    // the profiles', so each rule has its own source line.
    let line = Object.values(overlay.profiles).reduce((sum, lists) => sum + overlayLineCount(lists), 0);
    for (const [category, lists] of Object.entries(overlay.categories ?? {})) {
      const id = categoryIds.get(category);
      if (id === undefined) {
        // Not loaded: either no profile here blocks it (nothing to add to) or this school has no such category.
        if (!available.has(category))
          problems.warning(fileNames[overlayFile]!, 0, `category "${category}" of the district overlay is not defined here (ignored)`);
        line += (lists.block_domains?.length ?? 0) + (lists.block_keywords?.length ?? 0);
        continue;
      }
      for (const domain of lists.block_domains ?? []) addOverlayDomain(domains, domain, id, overlayFile, ++line, fileNames[overlayFile]!, problems);
      for (const phrase of lists.block_keywords ?? []) {
        line++;
        const error = keywords.add(phrase, id, overlayFile, line);
        if (error !== null) problems.warning(fileNames[overlayFile]!, line, `keyword "${phrase}" skipped: ${error}`);
      }
    }
  }

  const noInspectId = categoryNames.push(NO_INSPECT_CATEGORY) - 1;
  const noInspectPath = path.join(rulesDir, 'no_inspect');
  if (streamDomains) {
    const fileId = fileNames.push(displayPath(noInspectPath)) - 1;
    if (!(await addDomainFile(noInspectPath, noInspectId, fileId, domains, problems, null, true))) fileNames.pop();
  } else {
    try {
      const text = await readFile(noInspectPath, 'utf8');
      const fileId = fileNames.push(displayPath(noInspectPath)) - 1;
      addRuleFile('domains', text, fileNames[fileId]!, fileId, noInspectId, { domains, urls, keywords }, problems, options.checkAll === true);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') problems.error(displayPath(noInspectPath), 0, `cannot read: ${(error as Error).message}`);
    }
  }

  const total = categoryNames.length;
  /** A profile's actions with `blockCategories` (its own, or a schedule's in place of them). */
  const actionsOf = (profile: PolicyConfig['profiles'][number], blockCategories: typeof profile.blockCategories): Uint8Array => {
    const actions = new Uint8Array(total);
    for (const { value } of blockCategories) {
      const id = categoryIds.get(value);
      if (id !== undefined) actions[id] = CATEGORY_BLOCKS;
    }
    for (const { value } of profile.allowCategories) {
      const id = categoryIds.get(value);
      if (id !== undefined) actions[id] = CATEGORY_ALLOWS;
    }
    const custom = customIds.get(profile.id)!;
    actions[custom.allow] = CATEGORY_ALLOWS;
    actions[custom.block] = CATEGORY_BLOCKS;
    const district = districtIds.get(profile.id);
    if (district !== undefined) {
      actions[district.allow] = CATEGORY_ALLOWS;
      actions[district.block] = CATEGORY_BLOCKS;
      actions[district.scopedAllow] = CATEGORY_ALLOWS;
    }
    return actions;
  };
  const profiles: ProfileSpec[] = config.profiles.map((profile) => {
    return {
      id: profile.id,
      name: profile.name,
      actions: actionsOf(profile, profile.blockCategories),
      schedules: profile.schedules.map((s) => ({ name: s.name, windows: s.windows, actions: actionsOf(profile, s.blockCategories) })),
      blockIpLiterals: profile.blockIpLiterals,
      defaultAction: profile.defaultAction,
      safeSearch: profile.safeSearch,
      inspect: profile.inspect,
    };
  });
  const noInspectActions = new Uint8Array(total);
  noInspectActions[noInspectId] = CATEGORY_BLOCKS;
  const keywordsInsideAllow = new Uint8Array(total);
  for (const district of districtIds.values()) keywordsInsideAllow[district.scopedAllow] = 1;

  const usersFile = config.proxyAuth.usersFile === null ? null : path.resolve(rulesDir, config.proxyAuth.usersFile);
  if (usersFile !== null) {
    try {
      await stat(usersFile);
    } catch {
      problems.error(policyName, 1, `proxy_auth.users_file "${config.proxyAuth.usersFile}" does not exist`);
    }
  }

  const builtFiles = domainFiles?.build() ?? [];
  const builtDomains = DomainSet.combine([...builtFiles, domains.build()]);
  const builtUrls = urls.build();
  const builtKeywords = keywords.build();
  const builtBrands = brands.build();
  const stats = { domains: builtDomains.size, urls: builtUrls.size, keywords: builtKeywords.size, categories: toLoad.length, brands: builtBrands.size };
  if (problems.errorCount > 0) return { policy: null, problems: problems.items, stats };

  const compiled: CompiledRules = {
    categoryNames,
    fileNames,
    domains: builtDomains,
    urls: builtUrls,
    keywords: builtKeywords,
    brands: builtBrands,
    profiles,
    defaultProfile: config.defaultProfile.value,
    clients: config.clients,
    intercept: config.intercept,
    connectPorts: config.connectPorts,
    noInspectActions,
    keywordsInsideAllow,
    proxyAuth: { usersFile, profiles: new Map(config.proxyAuth.profiles.map((p) => p.value)) },
  };
  const policy = new Policy(compiled, options);
  ORGANISATIONS.set(policy, config.organisation);
  domainFiles?.remember(policy, builtFiles);
  const contentLimits = config.profiles.flatMap((p) => (p.contentLimit === null ? [] : [[p.id, p.contentLimit] as const]));
  attachContentRules(policy, { phrases: phrases.build(), limits: new Map(contentLimits) });
  return { policy, problems: problems.items, stats };
}

/**
 * The organisation section of the policy.yaml a policy was loaded from. Kept beside
 * the policy rather than in it (the decision engine has no use for names and
 * hotlines), so a reload swaps both at once; a policy built without a file gets the
 * defaults.
 */
const ORGANISATIONS = new WeakMap<Policy, Organisation>();

export function organisationOf(policy: Policy): Organisation {
  return ORGANISATIONS.get(policy) ?? DEFAULT_ORGANISATION;
}

function countLines(text: string): number {
  let lines = 1;
  for (let at = text.indexOf('\n'); at !== -1; at = text.indexOf('\n', at + 1)) lines++;
  return lines;
}

async function listCategories(categoriesDir: string): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  let entries: Dirent[];
  try {
    entries = await readdir(categoriesDir, { withFileTypes: true });
  } catch {
    return found;
  }
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    const folder = path.join(categoriesDir, entry.name);
    // A category may be a link to a shared copy of the UT1 lists.
    const isFolder = entry.isDirectory() || (entry.isSymbolicLink() && (await stat(folder).catch(() => null))?.isDirectory() === true);
    if (isFolder) found.set(entry.name, folder);
  }
  return found;
}

function referencedCategories(config: PolicyConfig, available: ReadonlyMap<string, string>, policyName: string, problems: ProblemList): Set<string> {
  const referenced = new Set<string>();
  for (const profile of config.profiles) {
    const scheduled = profile.schedules.flatMap((schedule) => schedule.blockCategories);
    for (const { value, line } of [...profile.blockCategories, ...profile.allowCategories, ...scheduled]) {
      if (available.has(value)) referenced.add(value);
      else problems.error(policyName, line, `unknown category "${value}" in profile ${profile.id} (no folder categories/${value})`);
    }
  }
  return referenced;
}

interface Builders {
  readonly domains: DomainSetBuilder;
  readonly urls: UrlSetBuilder;
  readonly keywords: KeywordSetBuilder;
}

function addRuleFile(
  kind: CategoryFileKind,
  text: string,
  fileName: string,
  fileId: number,
  categoryId: number,
  builders: Builders,
  problems: ProblemList,
  findDuplicates: boolean,
): void {
  const seen = findDuplicates ? new Map<string, number>() : null;
  forEachRuleLine(text, (rule, line) => {
    let key: string;
    switch (kind) {
      case 'domains': {
        const host = canonicalRuleHost(rule);
        if (host === null) {
          problems.error(fileName, line, `bad domain "${truncate(rule)}"`);
          return;
        }
        builders.domains.add(host, categoryId, fileId, line);
        key = host;
        break;
      }
      case 'urls': {
        const error = builders.urls.add(rule, categoryId, fileId, line);
        if (error !== null) {
          problems.error(fileName, line, `bad URL rule "${truncate(rule)}": ${error}`);
          return;
        }
        key = rule;
        break;
      }
      case 'keywords': {
        const error = builders.keywords.add(rule, categoryId, fileId, line);
        if (error !== null) {
          problems.error(fileName, line, `keyword "${truncate(rule)}": ${error}`);
          return;
        }
        key = rule.normalize('NFC').toLowerCase();
        break;
      }
    }
    if (seen !== null) {
      const first = seen.get(key);
      if (first !== undefined) problems.warning(fileName, line, `duplicate rule "${truncate(rule)}" (first on line ${first})`);
      else seen.set(key, line);
    }
  });
}

/**
 * A subscribed list joins its category wherever a profile blocks that category. Its
 * rules carry line 0: a decision names the list and version (`list:NAME@VERSION`),
 * not a line of a file the school never sees. The entries were validated when the
 * version was applied, so a bad one is skipped with a warning, never a refused reload.
 */
function addListRules(
  list: ListRules,
  categoryIds: ReadonlyMap<string, number>,
  available: ReadonlyMap<string, string>,
  builders: Builders,
  fileNames: string[],
  problems: ProblemList,
  brandDerivers: ReadonlyMap<number, { deriver: BrandDeriver }>,
): void {
  const categoryId = categoryIds.get(list.category);
  const fileName = `list:${list.name}@${list.version}`;
  if (categoryId === undefined) {
    if (!available.has(list.category)) problems.warning(fileName, 0, `category "${list.category}" has no folder categories/${list.category} (list ignored)`);
    return;
  }
  const fileId = fileNames.push(fileName) - 1;
  const text = list.text;
  const brandDeriver = brandDerivers.get(categoryId)?.deriver;
  forEachRuleSpan(text, (start, end) => {
    if (builders.domains.addCanonicalSpan(text, start, end, categoryId, fileId, 0)) {
      brandDeriver?.addListed(text.slice(start, end), fileId);
      return;
    }
    const entry = text.slice(start, end);
    if (entry.includes('/')) {
      if (builders.urls.add(entry, categoryId, fileId, 0) === null) return;
    } else {
      const host = canonicalRuleHost(entry);
      if (host !== null) {
        builders.domains.add(host, categoryId, fileId, 0);
        return brandDeriver?.addListed(host, fileId);
      }
    }
    problems.warning(fileName, 0, `entry "${truncate(entry)}" skipped`);
  });
}

/** Lines of the domain files a load will read, so that their entries get one array of the right size. */
async function countDomainLines(files: readonly string[]): Promise<number> {
  let lines = 0;
  for (const file of files) {
    // A file that cannot be read is reported when it is loaded.
    lines += await countFileLines(file, file.endsWith('.gz')).catch(() => 0);
  }
  return lines;
}

/**
 * The serving path for a `domains` file (gzip when named `.gz`): read in pieces, and
 * most lines, canonical already, hashed in place without becoming strings. Without a
 * builder (the compiled set of the domain files is reused) the file is read only for
 * its category's brand deriver, if it has one. Returns false when the file is not
 * there and `absentIsFine`, having reported nothing.
 */
async function addDomainFile(
  file: string,
  categoryId: number,
  fileId: number,
  domains: DomainSetBuilder | null,
  problems: ProblemList,
  brandDeriver: BrandDeriver | null,
  absentIsFine = false,
): Promise<boolean> {
  if (domains === null && brandDeriver === null) return true;
  const shown = displayPath(file);
  try {
    await forEachLinePiece(file, file.endsWith('.gz'), (text, bytes, firstLine) =>
      forEachRuleSpan(
        text,
        (start, end, line) => {
          if (domains === null) {
            const host = canonicalRuleHost(bytes.toString('utf8', start, end));
            if (host !== null) brandDeriver!.addListed(host, fileId);
            return;
          }
          if (domains.addCanonicalSpan(text, start, end, categoryId, fileId, line)) {
            // Only categories with a brands file pay for the host as a string.
            brandDeriver?.addListed(text.slice(start, end), fileId);
            return;
          }
          const rule = bytes.toString('utf8', start, end);
          const host = canonicalRuleHost(rule);
          if (host === null) return problems.error(shown, line, `bad domain "${truncate(rule)}"`);
          domains.add(host, categoryId, fileId, line);
          brandDeriver?.addListed(host, fileId);
        },
        firstLine,
      ),
    );
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // Opening fails before any line is read: the file simply is not there.
    if (code === 'ENOENT' && absentIsFine) return false;
    problems.error(shown, 0, `cannot read: ${code ?? (error as Error).message}`);
  }
  return true;
}

/** A list of rules/bundled/ joins its category's rules, with its own file name for sources. */
async function addBundledList(
  list: BundledList,
  categoryId: number,
  fileNames: string[],
  builders: Builders,
  problems: ProblemList,
  findDuplicates: boolean,
): Promise<number | null> {
  const shown = displayPath(list.file);
  let text: string;
  try {
    text = await readBundledText(list.file);
  } catch (error) {
    problems.error(shown, 0, `cannot read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    return null;
  }
  const fileId = fileNames.push(shown) - 1;
  addRuleFile(list.kind, text, shown, fileId, categoryId, builders, problems, findDuplicates);
  return fileId;
}

function addCustomDomain(domains: DomainSetBuilder, value: string, categoryId: number, line: number, policyName: string, problems: ProblemList): void {
  const host = canonicalRuleHost(value);
  if (host === null) problems.error(policyName, line, `bad domain "${truncate(value)}"`);
  else domains.add(host, categoryId, 0, line);
}

/** A bad entry in the district's overlay is skipped with a warning: one typo at the district must not stop every school's reload. */
function addOverlayDomain(
  domains: DomainSetBuilder,
  value: string,
  categoryId: number,
  fileId: number,
  line: number,
  fileName: string,
  problems: ProblemList,
): void {
  const host = canonicalRuleHost(value);
  if (host === null) problems.warning(fileName, line, `bad domain "${truncate(value)}" skipped`);
  else domains.add(host, categoryId, fileId, line);
}

function truncate(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}…` : text;
}
