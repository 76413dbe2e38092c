/**
 * Runs one list update on a worker thread: parsing and checking a list of a million
 * lines takes seconds of CPU, which must not stall the process that proxies (a
 * single-process gateway) or answers schools (the collector).
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { ListSubscription } from './config.js';
import { updateList, type ListUpdateResult, type UpdateOptions } from './update.js';

type ThreadInput = { readonly subscription: ListSubscription; readonly options: Omit<UpdateOptions, 'now'> };

export function updateListInThread(subscription: ListSubscription, options: Omit<UpdateOptions, 'now'>): Promise<ListUpdateResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), { workerData: { subscription, options } satisfies ThreadInput });
    let settled = false;
    worker.once('message', (result: ListUpdateResult) => {
      settled = true;
      resolve(result);
    });
    worker.once('error', (error) => {
      settled = true;
      reject(error);
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`list update thread exited with ${code}`));
    });
  });
}

if (!isMainThread && parentPort !== null && (workerData as Partial<ThreadInput> | null)?.subscription !== undefined) {
  const input = workerData as ThreadInput;
  const port = parentPort;
  void updateList(input.subscription, input.options).then((result) => port.postMessage(result));
}
