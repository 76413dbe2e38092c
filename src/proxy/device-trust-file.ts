import { readFileSync, promises as fs } from 'node:fs';
import path from 'node:path';
import type { DeviceRecord, DeviceTrust, DeviceTrustSnapshot } from './device-trust.js';

/** Under --data: which devices trust the school CA (read by `lachan ca status`). */
export const DEVICE_TRUST_FILE = 'device-trust.json';
/** Changes are written at most this often: a school's devices arrive in bursts at 7 a.m. */
const WRITE_DELAY_MS = 1_000;

export function deviceTrustPath(dataDir: string): string {
  return path.join(dataDir, DEVICE_TRUST_FILE);
}

/**
 * The stored state, or an empty one when there is none yet. A damaged file is
 * treated as empty: devices show their trust again at their next probe.
 */
export function readDeviceTrust(dataDir: string): DeviceTrustSnapshot {
  let text: string;
  try {
    text = readFileSync(deviceTrustPath(dataDir), 'utf8');
  } catch {
    return { ca: null, devices: {} };
  }
  try {
    const parsed = JSON.parse(text) as { version?: unknown; ca?: unknown; devices?: unknown };
    if (parsed.version !== 1 || typeof parsed.devices !== 'object' || parsed.devices === null) return { ca: null, devices: {} };
    const devices: Record<string, DeviceRecord> = {};
    for (const [address, value] of Object.entries(parsed.devices as Record<string, unknown>)) {
      const record = value as Partial<Record<keyof DeviceRecord, unknown>>;
      if (typeof record?.seen !== 'number') continue;
      devices[address] = {
        seen: record.seen,
        ...(typeof record.trusted === 'number' ? { trusted: record.trusted } : {}),
        ...(typeof record.refused === 'number' ? { refused: record.refused } : {}),
      };
    }
    return { ca: typeof parsed.ca === 'string' ? parsed.ca : null, devices };
  } catch {
    return { ca: null, devices: {} };
  }
}

/**
 * Writes the state of `trust` to the data folder a moment after it changes, whole and
 * atomically (a temporary file renamed into place), readable by the gateway's account
 * only: client addresses are personal data of the school's pupils.
 */
export class DeviceTrustWriter {
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly trust: DeviceTrust,
    private readonly dataDir: string,
    private readonly onError: (error: Error) => void,
  ) {}

  schedule(): void {
    if (this.timer !== null) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.write();
    }, WRITE_DELAY_MS);
    this.timer.unref();
  }

  /** Writes now what is pending (at shutdown). */
  async flush(): Promise<void> {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
      await this.write();
    }
    await this.writing;
  }

  private write(): Promise<void> {
    const text = `${JSON.stringify({ version: 1, ...this.trust.snapshot() })}\n`;
    const file = deviceTrustPath(this.dataDir);
    const temporary = `${file}.${process.pid}.tmp`;
    this.writing = this.writing.then(async () => {
      try {
        await fs.mkdir(this.dataDir, { recursive: true });
        await fs.writeFile(temporary, text, { mode: 0o600 });
        await fs.rename(temporary, file);
      } catch (error) {
        this.onError(error as Error);
      }
    });
    return this.writing;
  }
}
