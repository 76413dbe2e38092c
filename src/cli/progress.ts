import { stat } from 'node:fs/promises';

const REDRAW_MS = 100;
const BAR_WIDTH = 30;
/** Below this a bar would only flicker. */
const LARGE_INPUT_BYTES = 4 * 1024 * 1024;

/** A one-line progress bar on stderr, shown only on a terminal and for large inputs. */
export class Progress {
  private lastDraw = 0;
  private drawn = false;

  private constructor(
    private readonly total: number,
    private readonly label: string,
    private readonly enabled: boolean,
  ) {}

  /** `path` may be a file or a folder (summed one level deep). */
  static async forFile(path: string, label: string): Promise<Progress> {
    const total = await sizeOf(path);
    return new Progress(total, label, process.stderr.isTTY === true && total >= LARGE_INPUT_BYTES);
  }

  update(done: number): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.lastDraw < REDRAW_MS) return;
    this.lastDraw = now;
    const ratio = Math.min(1, done / this.total);
    const filled = Math.round(ratio * BAR_WIDTH);
    process.stderr.write(`\r${this.label} [${'#'.repeat(filled)}${' '.repeat(BAR_WIDTH - filled)}] ${(ratio * 100).toFixed(0).padStart(3)}%`);
    this.drawn = true;
  }

  done(): void {
    if (this.drawn) process.stderr.write('\r\x1b[K');
  }
}

async function sizeOf(path: string): Promise<number> {
  try {
    const info = await stat(path);
    if (!info.isDirectory()) return info.size;
    const { readdir } = await import('node:fs/promises');
    let total = 0;
    for (const name of await readdir(path)) {
      try {
        const child = await stat(`${path}/${name}`);
        if (child.isFile()) total += child.size;
      } catch {
        // vanished while we looked: nothing to count
      }
    }
    return total;
  } catch {
    return 0;
  }
}
