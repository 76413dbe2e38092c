import { readFileSync } from 'node:fs';
import path from 'node:path';
import { isMap, isScalar, LineCounter, parseDocument, type Node, type Pair } from 'yaml';
import { formatProblem, ProblemList, type RuleProblem } from './problems.js';

/**
 * Who runs lachan and whom a child can call: the school, the education office that
 * manages it (and its level: since the 2025 reform there are provinces and communes,
 * no more district offices), the place name of its documents, the provincial child
 * hotline, and the people the yearly report goes to and is signed by.
 *
 * Names, places and hotlines change with administrative reforms; they are
 * configuration, never code. The gateway reads this from the `organisation:` section
 * of rules/policy.yaml (block pages), the collector from `organisation.yaml` in its
 * data folder (dashboard and yearly report). Both go through `readOrganisation`, so
 * one set of rules and defaults applies. The defaults are what lachan said before the
 * section existed (Yên Bái's hotline 1800 1776, a district office), so an installation
 * that never writes the section sees no change.
 */

export type OfficeLevel = 'tinh' | 'xa' | 'huyen';

export interface Organisation {
  /** The school's name as children know it; null on the collector or when not set. */
  readonly school: string | null;
  readonly office: {
    /** "Phòng Giáo dục và Đào tạo", "Sở Giáo dục và Đào tạo tỉnh Lào Cai", … */
    readonly name: string;
    readonly level: OfficeLevel;
    /** The body above it, first line of a document's heading ("UBND TỈNH LÀO CAI"); null: none shown. */
    readonly parent: string | null;
    /** Its short sign in document numbers ("SGDĐT" in "Số: 12/BC-SGDĐT"). */
    readonly abbreviation: string;
    /** Place name before a document's date ("Lào Cai, ngày …"). */
    readonly place: string;
  };
  /** The provincial child hotline, shown beside the national 111 (which never changes). */
  readonly hotline: {
    /** The digits to dial (tel: links). */
    readonly number: string;
    /** The number as people write it ("1800 1776", "0214 3840 111"). */
    readonly display: string;
    readonly label: string;
  };
  readonly report: {
    /** Who receives the yearly report ("Kính gửi"). */
    readonly recipient: string;
    /** First day of the reporting year, as [month, day]: [1, 1] is the calendar year. */
    readonly periodStart: readonly [number, number];
    /** The signer's authority, upper case as the heading rules want ("TRƯỞNG PHÒNG"). */
    readonly signerTitle: string;
    /** The signer's name under the signature; null leaves the line to be written. */
    readonly signerName: string | null;
  };
}

export const OFFICE_LEVELS: Readonly<Record<OfficeLevel, string>> = {
  tinh: 'tỉnh',
  xa: 'xã',
  huyen: 'quận/huyện',
};

export const DEFAULT_ORGANISATION: Organisation = Object.freeze({
  school: null,
  office: Object.freeze({ name: 'Phòng Giáo dục và Đào tạo', level: 'huyen' as OfficeLevel, parent: null, abbreviation: 'PGDĐT', place: 'Yên Bái' }),
  hotline: Object.freeze({ number: '18001776', display: '1800 1776', label: 'Đường dây hỗ trợ Yên Bái' }),
  report: Object.freeze({ recipient: 'Phòng Văn hóa và Thông tin', periodStart: [1, 1] as const, signerTitle: 'TRƯỞNG PHÒNG', signerName: null }),
});

/** The national child protection hotline: fixed by law, not configuration. */
export const NATIONAL_HOTLINE = { number: '111', label: 'Tổng đài quốc gia bảo vệ trẻ em' } as const;

/** The collector's organisation file, in its data folder. */
export const ORGANISATION_FILE = 'organisation.yaml';

const FIELDS: Readonly<Record<string, readonly string[]>> = {
  '': ['school', 'office', 'hotline', 'report'],
  office: ['name', 'level', 'parent', 'abbreviation', 'place'],
  hotline: ['number', 'label'],
  report: ['recipient', 'period_start', 'signer_title', 'signer_name'],
};
const MAX_TEXT = 200;

/** Digits a person dials, shown in groups as Vietnamese hotlines are written ("1800 1776"). */
function hotlineDisplay(number: string): string {
  return /^1[89]00\d{4}$/.test(number) ? `${number.slice(0, 4)} ${number.slice(4)}` : number;
}

/**
 * Reads an `organisation` mapping (a YAML node with its document's line counter),
 * reporting each problem with its line; fields left out keep their defaults.
 */
export function readOrganisation(node: Node | null | undefined, lines: LineCounter, file: string, problems: ProblemList): Organisation {
  const lineOf = (n: Node | Pair | null | undefined): number => {
    const range = n && 'range' in n ? n.range : n && 'key' in n ? (n.key as Node | null)?.range : undefined;
    return range ? lines.linePos(range[0]).line : 1;
  };
  if (node === null || node === undefined || (isScalar(node) && node.value === null)) return DEFAULT_ORGANISATION;
  if (!isMap(node)) {
    problems.error(file, lineOf(node), 'organisation must be a mapping (school, office, hotline, report)');
    return DEFAULT_ORGANISATION;
  }
  const values = new Map<string, { value: string | null; node: Node }>();
  const walk = (map: Node, prefix: string): void => {
    if (!isMap(map)) {
      problems.error(file, lineOf(map), `organisation.${prefix} must be a mapping of ${FIELDS[prefix]!.join(', ')}`);
      return;
    }
    for (const pair of map.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : '';
      const name = prefix === '' ? key : `${prefix}.${key}`;
      if (!FIELDS[prefix]!.includes(key)) {
        problems.warning(file, lineOf(pair.key as Node), `unknown field "organisation.${name}" (ignored; known: ${FIELDS[prefix]!.join(', ')})`);
        continue;
      }
      const value = pair.value as Node | null;
      if (prefix === '' && key in FIELDS) {
        if (value !== null) walk(value, key);
        continue;
      }
      if (value === null || (isScalar(value) && value.value === null)) values.set(name, { value: null, node: (value ?? pair.key) as Node });
      else if (isScalar(value) && (typeof value.value === 'string' || typeof value.value === 'number'))
        values.set(name, { value: String(value.value).trim(), node: value });
      else problems.error(file, lineOf(value), `organisation.${name} must be text`);
    }
  };
  walk(node, '');

  const defaults = DEFAULT_ORGANISATION;
  const text = (name: string, fallback: string): string => {
    const found = values.get(name);
    if (found === undefined) return fallback;
    if (found.value === null || found.value === '') {
      problems.error(file, lineOf(found.node), `organisation.${name} must not be empty (leave the field out to keep "${fallback}")`);
      return fallback;
    }
    if (found.value.length > MAX_TEXT) problems.error(file, lineOf(found.node), `organisation.${name} is longer than ${MAX_TEXT} characters`);
    return found.value;
  };
  const optional = (name: string, fallback: string | null): string | null => {
    const found = values.get(name);
    if (found === undefined) return fallback;
    if (found.value !== null && found.value.length > MAX_TEXT)
      problems.error(file, lineOf(found.node), `organisation.${name} is longer than ${MAX_TEXT} characters`);
    return found.value === null || found.value === '' ? null : found.value;
  };

  const level = text('office.level', defaults.office.level);
  if (!(level in OFFICE_LEVELS))
    problems.error(file, lineOf(values.get('office.level')?.node), `organisation.office.level must be tinh, xa or huyen (got "${level}")`);
  const written = text('hotline.number', defaults.hotline.display);
  const number = written.replace(/[\s.-]/g, '');
  if (!/^\d{3,15}$/.test(number))
    problems.error(
      file,
      lineOf(values.get('hotline.number')?.node),
      `organisation.hotline.number must be the digits to dial, such as 18001776 (got "${values.get('hotline.number')?.value ?? ''}")`,
    );
  const periodText = text('report.period_start', '01/01');
  const periodStart = parseDayMonth(periodText);
  if (periodStart === null)
    problems.error(
      file,
      lineOf(values.get('report.period_start')?.node),
      `organisation.report.period_start must be a day and month such as 01/01 or 15/11 (got "${periodText}")`,
    );

  return {
    school: optional('school', defaults.school),
    office: {
      name: text('office.name', defaults.office.name),
      level: level in OFFICE_LEVELS ? (level as OfficeLevel) : defaults.office.level,
      parent: optional('office.parent', defaults.office.parent),
      abbreviation: text('office.abbreviation', defaults.office.abbreviation),
      place: text('office.place', defaults.office.place),
    },
    hotline: {
      number,
      display: /\s/.test(written) ? written.replace(/\s+/g, ' ') : hotlineDisplay(number),
      label: text('hotline.label', defaults.hotline.label),
    },
    report: {
      recipient: text('report.recipient', defaults.report.recipient),
      periodStart: periodStart ?? defaults.report.periodStart,
      signerTitle: text('report.signer_title', defaults.report.signerTitle),
      signerName: optional('report.signer_name', defaults.report.signerName),
    },
  };
}

/** "dd/mm" → [month, day], a day every year has (29/02 is refused). */
function parseDayMonth(text: string): [number, number] | null {
  const match = /^(\d{1,2})\/(\d{1,2})$/.exec(text);
  if (match === null) return null;
  const day = Number(match[1]);
  const month = Number(match[2]);
  if (month < 1 || month > 12 || day < 1) return null;
  const days = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]!;
  return day <= days ? [month, day] : null;
}

export class OrganisationFileError extends Error {
  readonly code = 'LACHAN_ORGANISATION_INVALID';
  constructor(readonly problems: readonly RuleProblem[]) {
    super(
      problems
        .filter((p) => p.severity === 'error')
        .map(formatProblem)
        .join('\n'),
    );
    this.name = 'OrganisationFileError';
  }
}

/**
 * The collector's `organisation.yaml` (the same fields as policy.yaml's section, at
 * the top level). A missing file means the defaults; a broken one is refused whole,
 * every problem as FILE:LINE.
 */
export function loadOrganisationFile(dataDir: string): Organisation {
  const file = path.join(dataDir, ORGANISATION_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return DEFAULT_ORGANISATION;
    throw new OrganisationFileError([
      { file, line: 0, severity: 'error', message: `cannot read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` },
    ]);
  }
  const problems = new ProblemList();
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  for (const error of doc.errors) problems.error(file, lines.linePos(error.pos[0]).line, `YAML: ${error.message.split('\n', 1)[0]}`);
  const organisation = doc.errors.length > 0 ? DEFAULT_ORGANISATION : readOrganisation(doc.contents as Node | null, lines, file, problems);
  if (problems.errorCount > 0) throw new OrganisationFileError(problems.items);
  return organisation;
}

/** The first and last day (ISO) of the reporting year that ends in `year`. */
export function reportingPeriod(organisation: Organisation, year: number): { fromDay: string; toDay: string } {
  const [month, day] = organisation.report.periodStart;
  const iso = (y: number, m: number, d: number): string => `${String(y).padStart(4, '0')}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
  if (month === 1 && day === 1) return { fromDay: iso(year, 1, 1), toDay: iso(year, 12, 31) };
  const end = new Date(Date.UTC(year, month - 1, day - 1));
  return { fromDay: iso(year - 1, month, day), toDay: iso(end.getUTCFullYear(), end.getUTCMonth() + 1, end.getUTCDate()) };
}
