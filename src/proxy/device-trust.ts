/**
 * Which devices have shown that they trust the school CA. A device shows it by
 * loading the trust probe (an image the block page and the install guide fetch from
 * TRUST_PROBE_HOST over HTTPS, intercepted with a certificate from the school CA):
 * the request arrives only if the device's TLS accepted that certificate. A device
 * whose handshake with the probe ends in a certificate alert has shown the opposite.
 *
 * Kept per client address, with times; what was learned under one CA says nothing
 * about the next, so a new CA forgets it. The state stays on the gateway (a file
 * under --data, see device-trust-file.ts); nothing of it is shipped anywhere.
 */

import { DEVICE_TRUST_RETENTION_DAYS } from '../privacy/retention.js';
export interface DeviceRecord {
  /** Last day the gateway saw the device open an HTTPS connection (ms since the epoch; refreshed once a day). */
  readonly seen: number;
  /** Last time it fetched the probe through the school CA. */
  readonly trusted?: number;
  /** Last time its TLS refused the probe's certificate from the school CA. */
  readonly refused?: number;
}

export interface DeviceTrustSnapshot {
  /** SHA-256 fingerprint of the CA the trust was learned under; null before any CA. */
  readonly ca: string | null;
  readonly devices: Readonly<Record<string, DeviceRecord>>;
}

/** Devices remembered at most: beyond this only probe results are added (a school has far fewer). */
const MAX_DEVICES = 65_536;
const DAY_MS = 24 * 60 * 60 * 1000;
/** A device not seen for this long is forgotten: its address is personal data kept no longer than needed (src/privacy/retention.ts). */
export const DEVICE_RETENTION_MS = DEVICE_TRUST_RETENTION_DAYS * DAY_MS;

/** True when the record says the device trusts the CA now: its latest probe went through. */
export function trustsCa(record: DeviceRecord | undefined): boolean {
  return record?.trusted !== undefined && (record.refused === undefined || record.trusted >= record.refused);
}

/** `::ffff:10.0.0.5` (an IPv4 client on a dual-stack socket) is `10.0.0.5`. */
export function deviceAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

export class DeviceTrust {
  private caFingerprint: string | null;
  private readonly devices = new Map<string, DeviceRecord>();
  private readonly listeners: ((address: string, record: DeviceRecord) => void)[] = [];
  private readonly resetListeners: (() => void)[] = [];

  constructor(snapshot: DeviceTrustSnapshot = { ca: null, devices: {} }, now = Date.now()) {
    this.caFingerprint = snapshot.ca;
    for (const [address, record] of Object.entries(snapshot.devices)) {
      if (lastHeardOf(record) > now - DEVICE_RETENTION_MS) this.devices.set(address, record);
    }
  }

  get ca(): string | null {
    return this.caFingerprint;
  }

  /** Called for every change learned here (not for merged ones): to persist or relay it. */
  onLearned(listener: (address: string, record: DeviceRecord) => void): void {
    this.listeners.push(listener);
  }

  /** Called when a new CA made everything learned void. */
  onReset(listener: () => void): void {
    this.resetListeners.push(listener);
  }

  isTrusted(address: string): boolean {
    return trustsCa(this.devices.get(deviceAddress(address)));
  }

  /**
   * A device opened an HTTPS connection: remembered (once a day at most, to keep writes
   * rare), so `ca status` can count devices not yet known to trust and old ones expire.
   */
  noteSeen(address: string, now = Date.now()): void {
    const key = deviceAddress(address);
    const before = this.devices.get(key);
    if (before !== undefined ? now - before.seen < DAY_MS : this.devices.size >= MAX_DEVICES) return;
    this.learn(key, { ...before, seen: now });
  }

  /** The outcome of a probe: fetched through the school CA (true) or refused by the device's TLS (false). */
  noteProbe(address: string, trusted: boolean, now = Date.now()): void {
    const key = deviceAddress(address);
    const before = this.devices.get(key);
    // Only a change of state is worth a write; repeated probes of a known device are not.
    if (before !== undefined && trustsCa(before) === trusted && (trusted ? before.trusted : before.refused) !== undefined) return;
    this.learn(key, trusted ? { ...before, seen: now, trusted: now } : { ...before, seen: now, refused: now });
  }

  /** A record learned by another process (or read back): the later of each time wins. Returns whether anything changed. */
  merge(address: string, record: DeviceRecord): boolean {
    const before = this.devices.get(address);
    const merged: DeviceRecord =
      before === undefined
        ? record
        : {
            seen: Math.max(before.seen, record.seen),
            ...maxField('trusted', before, record),
            ...maxField('refused', before, record),
          };
    if (before !== undefined && merged.seen === before.seen && merged.trusted === before.trusted && merged.refused === before.refused) return false;
    this.devices.set(address, merged);
    return true;
  }

  /** The CA in force. A different one than the trust was learned under voids it (devices still count as seen). */
  setCa(fingerprint: string | null): boolean {
    if (fingerprint === this.caFingerprint) return false;
    const hadCa = this.caFingerprint !== null;
    this.caFingerprint = fingerprint;
    if (hadCa) {
      for (const [address, record] of this.devices) this.devices.set(address, { seen: record.seen });
    }
    for (const listener of this.resetListeners) listener();
    return true;
  }

  /** The state to save or show; devices past retention are forgotten here, since it is what gets written. */
  snapshot(now = Date.now()): DeviceTrustSnapshot {
    for (const [address, record] of this.devices) if (lastHeardOf(record) <= now - DEVICE_RETENTION_MS) this.devices.delete(address);
    return { ca: this.caFingerprint, devices: Object.fromEntries(this.devices) };
  }

  private learn(address: string, record: DeviceRecord): void {
    this.devices.set(address, record);
    for (const listener of this.listeners) listener(address, record);
  }
}

function lastHeardOf(record: DeviceRecord): number {
  return Math.max(record.seen, record.trusted ?? 0, record.refused ?? 0);
}

function maxField(field: 'trusted' | 'refused', a: DeviceRecord, b: DeviceRecord): Partial<DeviceRecord> {
  const value = Math.max(a[field] ?? -1, b[field] ?? -1);
  return value < 0 ? {} : { [field]: value };
}
