/**
 * The compiled page scan: UTF-8 page text folded and matched against a phrase set in
 * one pass over its bytes, by assembly/page-scan.ts built to WebAssembly
 * (`npm run build` writes dist/page-scan.wasm). It gives the phrases the string path
 * gives (TextDecoder, text.ts folding, KeywordSet.scanAll), at about three times the
 * speed on news pages: no string is decoded and the page is read once.
 *
 * The markup state machine (markup.ts) still runs in JavaScript, over the chunk as a
 * latin1 string: every character HTML syntax uses is ASCII, and a byte of a UTF-8
 * sequence is never ASCII, so tags, entities and scripts are found at the same byte
 * offsets. The text between them is not copied: MarkupText hands over offsets, which
 * go to the scan as ranges of the chunk already in the WebAssembly memory.
 *
 * One kernel (a WebAssembly instance with its own memory) per phrase set, made when a
 * page is first read with it and collected with it after a reload. Its memory holds,
 * in order: the tables (once), one slot (a page's scan state: automaton state, marks
 * of its last positions, entries reported) and a work area for one chunk at a time.
 * Scans are synchronous, so the pages a gateway reads at once take turns: the slot
 * holds the state of the page that scanned last, and another page's turn first saves
 * it into that page's own buffer (a few hundred bytes). A page that is dropped
 * without a word holds no part of the kernel: at most the kernel still names it as the
 * slot's last owner until the next page takes its turn.
 *
 * Used for UTF-8 pages; other charsets keep the string path. The automaton's rows are
 * 16-bit while they fit and 32-bit for larger lists (keywords.ts, CompactRows), so a
 * list of any size reads pages here, in a memory that grows with it (states × alphabet
 * × 4 bytes: 12.6 MB for the shipped phrases with Debian's e2guardian lists added). A
 * table the WebAssembly memory cannot take (32-bit addresses: 4 GiB, or what the
 * process is refused) leaves that list's pages to the string path.
 */
import { readFileSync } from 'node:fs';
import type { Policy } from '../policy/engine.js';
import { contentRulesOf, type PhraseScanner, type PhraseSet } from '../policy/phrases.js';
import { CODE_UNIT_MARK, CODE_UNIT_SEPARATOR, codeUnitTables } from '../policy/text.js';
import { wholeCharacters } from './charset.js';
import { MarkupText, type TextSink } from './markup.js';
import type { PackedPhraseAutomaton } from '../policy/keywords.js';

/** The part of the WebAssembly API used here (TypeScript's ES libraries do not declare it; Node has it). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
type WasmModule = object;
interface WasmApi {
  readonly Module: new (bytes: Uint8Array) => WasmModule;
  readonly Instance: new (module: WasmModule, imports: object) => { readonly exports: unknown };
}
const wasm = (globalThis as unknown as { readonly WebAssembly: WasmApi }).WebAssembly;

interface KernelExports {
  readonly memory: WasmMemory;
  setTables(...pointersAndSizes: number[]): void;
  resetSlot(slot: number, seenBytes: number): void;
  scan(slot: number, ranges: number, count: number, found: number): number;
  finish(slot: number, found: number): number;
}

/** assembly/page-scan.ts: kind bits and the slot's fixed part. */
const KIND_SHIFT = 16;
const SEPARATOR_SYMBOL = 1;
const SLOT_FIXED = 32 + 128 * 4;
const PAGE = 65536;
/** The most bytes scanned in one call; the work area is sized for it. */
const MAX_PIECE = 64 * 1024;
/** A break between words in the range list (a start of -1). */
const BREAK = -1;

let compiled: WasmModule | null | undefined;

/** The compiled module, from dist/ (beside dist/src/content when built, or from src/content in tests); null if it was not built. */
function kernelModule(): WasmModule | null {
  if (compiled !== undefined) return compiled;
  compiled = null;
  for (const candidate of ['../../page-scan.wasm', '../../dist/page-scan.wasm']) {
    try {
      compiled = new wasm.Module(readFileSync(new URL(candidate, import.meta.url)));
      break;
    } catch {
      // Not at this place: try the next.
    }
  }
  return compiled;
}

/** Whether the compiled scan is there (it is after `npm run build`); without it pages take the string path. */
export function pageScanAvailable(): boolean {
  return kernelModule() !== null;
}

const KERNELS = new WeakMap<PhraseSet, PageScanKernel | null>();

/**
 * Makes the page scan of a policy that reads pages now (10–45 ms; ~150 ms for 32-bit rows
 * of 3.2 M cells, the shipped phrases with Debian's e2guardian lists), when it is loaded,
 * rather than in the first inspected response after it.
 */
export function preparePageScan(policy: Policy): void {
  const rules = contentRulesOf(policy);
  if (rules.limits.size > 0) PageScanKernel.of(rules.phrases);
}

function roundUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

/** The kernel's memory could not grow to what its tables need (PageScanKernel.of then answers null). */
class KernelMemoryError extends Error {
  readonly code = 'PAGE_SCAN_MEMORY';
}

/** Grows `memory` to at least `bytes`; WebAssembly answers a refused growth with a RangeError. */
function grow(memory: WasmMemory, bytes: number): void {
  const pages = Math.ceil((bytes - memory.buffer.byteLength) / PAGE);
  if (pages <= 0) return;
  try {
    memory.grow(pages);
  } catch (error) {
    throw new KernelMemoryError(`the page scan's memory cannot grow to ${bytes} bytes`, { cause: error });
  }
}

export class PageScanKernel {
  private readonly exports: KernelExports;
  private readonly seenBytes: number;
  /** Bytes of a page's scan state (assembly/page-scan.ts, the slot). */
  readonly slotSize: number;
  private readonly slot: number;
  /** The page whose state the slot holds, or null. */
  private owner: PageScan | null = null;
  /** Start of the work area: input bytes, then ranges, then entity text, then found entries. */
  private workBase = 0;
  private workBytes = 0;
  bytes: Buffer;
  words: Int32Array;

  /** The kernel for `phrases`, made on first use; null when its pages take the string path. */
  static of(phrases: PhraseSet): PageScanKernel | null {
    let kernel = KERNELS.get(phrases);
    if (kernel === undefined) {
      const module = phrases.size === 0 ? null : kernelModule();
      kernel = null;
      try {
        if (module !== null) kernel = new PageScanKernel(module, phrases, phrases.automaton.packedForPages());
      } catch (error) {
        // A table the memory cannot take: the string path reads these pages, with the dense table it already has.
        if (!(error instanceof KernelMemoryError)) throw error;
      }
      KERNELS.set(phrases, kernel);
    }
    return kernel;
  }

  private constructor(
    module: WasmModule,
    readonly phrases: PhraseSet,
    packed: PackedPhraseAutomaton,
  ) {
    this.exports = new wasm.Instance(module, {}).exports as KernelExports;
    const entries = phrases.size;
    this.seenBytes = roundUp(entries, 8) / 8;
    this.slotSize = roundUp(SLOT_FIXED + this.seenBytes, 16);

    const units = new Uint32Array(0x10000);
    const folding = codeUnitTables();
    for (let cu = 0; cu < 0x10000; cu++) {
      const kind = folding.kinds[cu]!;
      const symbol = kind === CODE_UNIT_SEPARATOR ? SEPARATOR_SYMBOL : kind < CODE_UNIT_MARK ? packed.symbolOf[folding.bases[cu]!]! : 0;
      units[cu] = symbol | (kind << KIND_SHIFT);
    }
    const parts: ArrayBufferView[] = [
      units,
      folding.marks,
      packed.table,
      packed.originalState,
      packed.firstOutput,
      packed.nextOutput,
      packed.entryAt,
      packed.entryNext,
      packed.entryHostOnly,
      packed.entryOffset,
      packed.entryLength,
      packed.patternBase,
      packed.patternMarks,
    ];
    const offsets: number[] = [];
    let end = 16; // 0 stays unused, so that no table sits at the null address
    for (const part of parts) {
      offsets.push(end);
      end = roundUp(end + part.byteLength, 16);
    }
    this.slot = end;
    end = roundUp(end + this.slotSize, 16);
    this.workBase = end;
    grow(this.exports.memory, end);
    const memory = new Uint8Array(this.exports.memory.buffer);
    parts.forEach((part, i) => {
      memory.set(new Uint8Array(part.buffer, part.byteOffset, part.byteLength), offsets[i]!);
    });
    // A state reached by a separator loops on another (assembly/page-scan.ts setTables),
    // changed in the kernel's copy: the table may be the set's own (16-bit rows).
    const table = packed.table;
    const rows =
      table instanceof Uint16Array ? new Uint16Array(memory.buffer, offsets[2]!, table.length) : new Uint32Array(memory.buffer, offsets[2]!, table.length);
    const alphabet = packed.alphabetSize;
    for (let row = 0; row < rows.length; row += alphabet) {
      const afterSeparator = rows[row + SEPARATOR_SYMBOL]!;
      rows[afterSeparator + SEPARATOR_SYMBOL] = afterSeparator;
    }
    // In setTables' order: the code-unit tables and the rows, the table's shape, then the rest as laid out.
    this.exports.setTables(offsets[0]!, offsets[1]!, offsets[2]!, alphabet, packed.outputsFrom, table.BYTES_PER_ELEMENT, ...offsets.slice(3));
    this.bytes = Buffer.from(this.exports.memory.buffer);
    this.words = new Int32Array(this.exports.memory.buffer);
    this.reserveWork(this.workNeeded(MAX_PIECE));
  }

  /**
   * Puts `page`'s state in the slot, saving the state of the page that had it: a page
   * that never left the slot starts from a reset one, one that left from what it saved.
   */
  enter(page: PageScan): void {
    const owner = this.owner;
    if (owner === page) return;
    const slot = this.slot;
    if (owner !== null) (owner.saved ??= new Uint8Array(this.slotSize)).set(this.bytes.subarray(slot, slot + this.slotSize));
    if (page.saved !== null) this.bytes.set(page.saved, slot);
    else this.exports.resetSlot(slot, this.seenBytes);
    this.owner = page;
  }

  /** `page` reads no more: its state need not be saved. */
  leave(page: PageScan): void {
    if (this.owner === page) this.owner = null;
  }

  /** Makes room for a chunk of `length` bytes in the work area; returns where its bytes go. */
  workFor(length: number): number {
    if (this.workNeeded(length) > this.workBytes) this.reserveWork(this.workNeeded(length));
    return this.workBase;
  }

  /** Where the ranges of a chunk of `length` bytes start (i32 pairs), and where its entity text goes. */
  rangesAt(length: number): number {
    return roundUp(this.workBase + length + 4, 16);
  }

  entityTextAt(length: number): number {
    return this.rangesAt(length) + 8 * (length + 16);
  }

  private foundAt(length: number): number {
    return roundUp(this.entityTextAt(length) + 2 * length + 64, 16);
  }

  private workNeeded(length: number): number {
    return this.foundAt(length) - this.workBase + 4 * this.phrases.size;
  }

  /** Scans `count` ranges of a chunk of `length` bytes with the slot's state, and counts what it finds in `tally`. */
  scan(length: number, count: number, tally: PhraseScanner): void {
    const found = this.foundAt(length);
    this.counted(found, this.exports.scan(this.slot, this.rangesAt(length), count, found), tally);
  }

  finish(tally: PhraseScanner): void {
    const found = this.foundAt(0);
    this.counted(found, this.exports.finish(this.slot, found), tally);
  }

  private counted(found: number, reported: number, tally: PhraseScanner): void {
    for (let i = 0; i < reported; i++) tally.count(this.words[(found >> 2) + i]!);
  }

  private reserveWork(workBytes: number): void {
    this.workBytes = workBytes;
    const needed = this.workBase + workBytes;
    const memory = this.exports.memory;
    if (needed > memory.buffer.byteLength) {
      grow(memory, needed);
      this.bytes = Buffer.from(memory.buffer);
      this.words = new Int32Array(memory.buffer);
    }
  }
}

/** The compiled scan of one UTF-8 page, fed its (decoded) body bytes chunk by chunk. */
export class PageScan implements TextSink {
  readonly markup: MarkupText | null;
  /** The scan state while another page has the kernel's slot (PageScanKernel.enter); null while it never had to leave. */
  saved: Uint8Array | null = null;
  /** The end of the previous chunk when it cut a UTF-8 sequence. */
  private readonly carried = new Uint8Array(4);
  private carriedBytes = 0;
  /** The chunk being read, as MarkupText sees it, and where its bytes are. */
  private chunkText = '';
  private chunkAt = 0;
  private ranges = 0;
  private rangesAt = 0;
  private entityAt = 0;
  private lastWasBreak = false;

  constructor(
    private readonly kernel: PageScanKernel,
    private readonly tally: PhraseScanner,
    html: boolean,
  ) {
    this.markup = html ? new MarkupText(this, true) : null;
  }

  /**
   * Reads the next bytes of the page, in pieces of at most MAX_PIECE: the work area
   * takes about eleven bytes a byte of chunk and a WebAssembly memory never shrinks,
   * so one large write would keep its size for the kernel's life.
   */
  write(bytes: Uint8Array): void {
    for (let at = 0; at < bytes.length; at += MAX_PIECE) this.writePiece(bytes.subarray(at, Math.min(bytes.length, at + MAX_PIECE)));
  }

  private writePiece(bytes: Uint8Array): void {
    const kernel = this.kernel;
    const length = this.carriedBytes + bytes.length;
    const at = kernel.workFor(length);
    const memory = kernel.bytes;
    if (this.carriedBytes > 0) memory.set(this.carried.subarray(0, this.carriedBytes), at);
    memory.set(bytes, at + this.carriedBytes);
    const whole = wholeCharacters(memory.subarray(at, at + length));
    this.carriedBytes = length - whole;
    if (this.carriedBytes > 0) this.carried.set(memory.subarray(at + whole, at + length));
    memory[at + whole] = 0; // no continuation byte after the last range (assembly/page-scan.ts scan)
    this.read(at, whole);
  }

  /**
   * The end of the page: the markup's end, then the last word. A sequence the last chunk
   * cut is dropped: malformed, it would fold to a separator, which the end adds anyway.
   */
  end(): void {
    this.carriedBytes = 0;
    const at = this.kernel.workFor(0);
    this.begin(at, 0);
    this.markup?.end();
    this.kernel.enter(this);
    this.kernel.scan(0, this.ranges, this.tally);
    this.kernel.finish(this.tally);
  }

  /** Nothing more will be read (the kernel need not keep this page's state). */
  release(): void {
    this.kernel.leave(this);
  }

  private begin(at: number, length: number): void {
    this.chunkAt = at;
    this.ranges = 0;
    this.rangesAt = this.kernel.rangesAt(length) >> 2;
    this.entityAt = this.kernel.entityTextAt(length);
  }

  private read(at: number, length: number): void {
    this.begin(at, length);
    if (this.markup === null) {
      if (length > 0) this.chunkRange(0, length);
    } else {
      this.chunkText = this.kernel.bytes.toString('latin1', at, at + length);
      this.markup.write(this.chunkText);
      this.chunkText = '';
    }
    this.kernel.enter(this);
    this.kernel.scan(length, this.ranges, this.tally);
  }

  /** TextSink: text of the chunk (offsets into it), or an entity's value (UTF-8 as latin1, see MarkupText). */
  append(text: string, start: number, end: number): void {
    if (end <= start) return;
    // Equal strings are equal bytes, so an entity's value that happens to equal the chunk may take either way.
    if (text === this.chunkText) return this.chunkRange(start, end);
    const words = this.kernel.words;
    const pair = this.rangesAt + 2 * this.ranges++;
    this.lastWasBreak = false;
    const bytes = this.kernel.bytes;
    const from = this.entityAt;
    for (let i = start; i < end; i++) bytes[this.entityAt++] = text.charCodeAt(i);
    words[pair] = from;
    words[pair + 1] = this.entityAt;
    bytes[this.entityAt] = 0; // as after the chunk's bytes
  }

  /** Bytes [start, end) of the chunk being read, as a range of text. */
  private chunkRange(start: number, end: number): void {
    const pair = this.rangesAt + 2 * this.ranges++;
    this.lastWasBreak = false;
    this.kernel.words[pair] = this.chunkAt + start;
    this.kernel.words[pair + 1] = this.chunkAt + end;
  }

  separate(): void {
    if (this.lastWasBreak) return;
    this.lastWasBreak = true;
    const pair = this.rangesAt + 2 * this.ranges++;
    this.kernel.words[pair] = BREAK;
  }
}
