/*
 * A reload that leaves the domain files alone takes over the serving policy's compiled
 * sets of them (src/rules/domain-files.ts): what changed must still apply, and every
 * list must still block. A reload after a domain file changed compiles the tier of
 * that file again. The shipped rules folder, bundled lists included, plus one list
 * large enough for the large tier, behind a real `lachan serve`.
 */
import { appendFileSync, cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curl, makeRulesDir, type Origin, REPO_ROOT, removeDir, type RunningGateway, startGateway, startHttpOrigin } from './harness/index.js';

/** In hostsVN's gambling list as bundled (rules/bundled/hostsvn-gambling.domains.gz), nowhere else. */
const BUNDLED_LISTED = '000000tyc.com';
/** In rules/categories/gambling/domains. */
const CATEGORY_LISTED = '188bet.com';
const SCHOOL_SITE = 'truong-thu.test';
const NEWLY_LISTED = 'moi-them.test';
const NEW_KEYWORD = 'tukhoathunghiem';
/** Only in the large list, of category z-lon. */
const LARGE_LISTED = 'chi-o-lon.test';

let origin: Origin;
let gateway: RunningGateway;
let rulesDir: string;

beforeAll(async () => {
  origin = await startHttpOrigin((_req, res) => res.end('trang của trường'));
  rulesDir = makeRulesDir({});
  cpSync(path.join(REPO_ROOT, 'rules'), rulesDir, { recursive: true });
  // Over LARGE_DOMAIN_FILE_BYTES. It also lists CATEGORY_LISTED, which gambling's own file, read first, names too.
  const generated = Array.from({ length: 50_000 }, (_, i) => `may-${i}.danh-sach-lon.test`);
  mkdirSync(path.join(rulesDir, 'categories/z-lon'));
  writeFileSync(path.join(rulesDir, 'categories/z-lon/domains'), `${CATEGORY_LISTED}\n${generated.join('\n')}\n${LARGE_LISTED}\n`);
  const policyFile = path.join(rulesDir, 'policy.yaml');
  writeFileSync(policyFile, readFileSync(policyFile, 'utf8').replaceAll('social-networks, vpn, doh]', 'social-networks, vpn, doh, z-lon]'));
  gateway = await startGateway({
    rulesDir,
    hosts: [BUNDLED_LISTED, CATEGORY_LISTED, SCHOOL_SITE, NEWLY_LISTED].map((name) => `127.0.0.1 ${name}\n`).join(''),
  });
}, 120_000);

afterAll(async () => {
  await gateway?.stop();
  await origin?.close();
  if (rulesDir !== undefined) removeDir(rulesDir);
});

const reloaded = (): Record<string, unknown>[] => gateway.logs.filter((line) => line.msg === 'rules reloaded');

/**
 * The reload that the edits just made start (the gateway watches its rules folder), once
 * no other follows: a SIGHUP as well would start a second one, found unchanged.
 */
async function reloadAfter(edit: () => void): Promise<Record<string, unknown>> {
  const before = reloaded().length;
  edit();
  await gateway.waitForLog(() => reloaded().length > before, 120_000);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  expect(reloaded().length).toBe(before + 1);
  return reloaded().at(-1)!;
}

async function statusOf(host: string, pathAndQuery = '/'): Promise<{ status: number; block: string | undefined }> {
  const result = await curl(gateway.port, `http://${host}:${origin.port}${pathAndQuery}`);
  return { status: result.status, block: result.headers['x-lachan-block'] };
}

function editPolicy(edit: (text: string) => string): void {
  const file = path.join(rulesDir, 'policy.yaml');
  const text = readFileSync(file, 'utf8');
  const edited = edit(text);
  expect(edited).not.toBe(text);
  writeFileSync(file, edited);
}

describe('a reload with the domain files unchanged', { timeout: 300_000 }, () => {
  it('applies a changed policy.yaml and keyword list, and the lists keep blocking', async () => {
    expect(await statusOf(BUNDLED_LISTED)).toEqual({ status: 403, block: 'gambling' });
    expect(await statusOf(CATEGORY_LISTED)).toEqual({ status: 403, block: 'gambling' });
    expect(await statusOf(LARGE_LISTED)).toEqual({ status: 403, block: 'z-lon' });
    expect((await statusOf(SCHOOL_SITE)).status).toBe(200);
    expect((await statusOf(SCHOOL_SITE, `/tim?q=${NEW_KEYWORD}`)).status).toBe(200);

    // The school blocks its test site and allows one host a bundled list blocks (tiểu học is the default profile).
    const line = await reloadAfter(() => {
      editPolicy((text) =>
        text.replace(
          'block_domains: []\n    allow_domains: [olm.vn, violympic.vn',
          `block_domains: [${SCHOOL_SITE}]\n    allow_domains: [${BUNDLED_LISTED}, olm.vn, violympic.vn`,
        ),
      );
      appendFileSync(path.join(rulesDir, 'categories/gambling/keywords'), `\n${NEW_KEYWORD}\n`);
    });
    expect(line.domainFiles).toBe('reused');

    expect(await statusOf(SCHOOL_SITE)).toEqual({ status: 403, block: 'custom' });
    // The school's allow wins over the list, as it did before the reuse.
    expect(await statusOf(BUNDLED_LISTED)).toEqual({ status: 200, block: undefined });
    expect(await statusOf(CATEGORY_LISTED)).toEqual({ status: 403, block: 'gambling' });
    expect(await statusOf('www.188bet.com')).toEqual({ status: 403, block: 'gambling' });
    expect(await statusOf(LARGE_LISTED)).toEqual({ status: 403, block: 'z-lon' });
    expect((await curl(gateway.port, 'http://may-4321.danh-sach-lon.test/')).headers['x-lachan-block']).toBe('z-lon');
    // A brand derived from the bundled list (the files are read for it, not compiled).
    expect((await curl(gateway.port, 'http://000000tyc.net/')).headers['x-lachan-block']).toBe('gambling');
    // Another entry of the same bundled list, still in force.
    expect((await curl(gateway.port, 'http://000000.com/')).headers['x-lachan-block']).toBe('gambling');
    expect(await statusOf(NEWLY_LISTED, `/tim?q=${NEW_KEYWORD}`)).toEqual({ status: 403, block: 'gambling' });
  });

  it('compiles the tier of a changed domain file, applies it, and reuses that set on the next reload', async () => {
    expect((await statusOf(NEWLY_LISTED)).status).toBe(200);
    // The small files compile again; the large list's set is the serving one's.
    const line = await reloadAfter(() => appendFileSync(path.join(rulesDir, 'categories/gambling/domains'), `${NEWLY_LISTED}\n`));
    expect(line.domainFiles).toBe('partly reused');
    expect(await statusOf(NEWLY_LISTED)).toEqual({ status: 403, block: 'gambling' });
    // A name in both tiers: the file read first still decides, whichever tier holds it.
    expect(await statusOf(CATEGORY_LISTED)).toEqual({ status: 403, block: 'gambling' });
    expect(await statusOf(LARGE_LISTED)).toEqual({ status: 403, block: 'z-lon' });

    // The school's exception, from the policy reused with the new set, still applies.
    expect(await statusOf(BUNDLED_LISTED)).toEqual({ status: 200, block: undefined });
    const next = await reloadAfter(() => editPolicy((text) => text.replace(`allow_domains: [${BUNDLED_LISTED}, `, 'allow_domains: [')));
    expect(next.domainFiles).toBe('reused');
    expect(await statusOf(BUNDLED_LISTED)).toEqual({ status: 403, block: 'gambling' });
    expect(await statusOf(NEWLY_LISTED)).toEqual({ status: 403, block: 'gambling' });
  });

  it('compiles again when a profile starts blocking another category', async () => {
    // A category sorted before `vpn` and `violence`: their ids move, so the serving set's records would mean other categories.
    const line = await reloadAfter(() => {
      mkdirSync(path.join(rulesDir, 'categories/thu-nghiem'));
      writeFileSync(path.join(rulesDir, 'categories/thu-nghiem/domains'), `${SCHOOL_SITE}\n`);
      editPolicy((text) => text.replace('block_categories: [adult, gambling]', 'block_categories: [adult, gambling, thu-nghiem]'));
    });
    expect(line.domainFiles).toBe('compiled');
    expect(await statusOf(NEWLY_LISTED)).toEqual({ status: 403, block: 'gambling' });
    expect(await statusOf(LARGE_LISTED)).toEqual({ status: 403, block: 'z-lon' });
    expect((await curl(gateway.port, 'http://nordvpn.com/')).headers['x-lachan-block']).toBe('vpn');
  });
});
