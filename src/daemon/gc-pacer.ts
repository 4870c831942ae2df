// Full collections for a session agent, paced by how much its heap and
// buffers have grown. V8 runs a full collection when the old generation has
// grown well past what the last one kept, and counts Buffer memory towards it
// only in 64 MB steps; so the garbage of a first scan or a FETCH 1:* of
// 100,000 messages (buffers and strings that lived long enough to be
// promoted) piled up to tens of MB before V8 collected it, and a user's
// process peaked at 2.5x Dovecot's (issue 11). Only for processes started
// with --expose-gc (session agents); the check is one heap-statistics call,
// every 50 ms while memory grows, every second otherwise.

import v8 from 'node:v8';

/** Growth past what the last collection kept that is worth a collection (some 10-30 ms for a 100,000-message INBOX). */
const STEP = 8 << 20;
/** Growth between two checks that makes the next one come soon. */
const BUSY = 1 << 20;
const FAST_MS = 50;
const SLOW_MS = 1000;

/** Heap in use plus memory held outside it (Buffers). */
function inUse(): number {
  const h = v8.getHeapStatistics();
  return h.used_heap_size + h.external_memory;
}

export class GcPacer {
  private floor: number;
  private last: number;

  constructor(private readonly gc: () => void, private readonly measure: () => number = inUse) {
    this.floor = this.last = measure();
  }

  /** One check: collect if worth it; the milliseconds until the next check. */
  step(): number {
    const now = this.measure();
    const growing = now - this.last > BUSY;
    this.last = now;
    if (now > this.floor + STEP) {
      this.gc();
      this.floor = this.last = this.measure();
    } else if (now < this.floor) this.floor = now; // V8 collected on its own
    return growing ? FAST_MS : SLOW_MS;
  }

  /** Check from now on; the timer does not keep the process alive. */
  start(): void {
    const tick = () => setTimeout(() => tick(), this.step()).unref();
    tick();
  }
}
