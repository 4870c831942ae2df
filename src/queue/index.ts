// The queue's public face: only src/queue touches the spool directory.
export { newQueueId, isQueueId, type QueueId } from './id.ts';
export { type QueueState, TRANSITIONS } from './state.ts';
export { type Control, type Recipient, parseNotify } from './control.ts';
export { enqueue, dropMessage, mayWriteQueue, ensureQueueDirs, type NewMessage } from './enqueue.ts';
export { activate, crossOff, defer, finish, hold, unhold, quarantine, type ActiveEntry } from './transition.ts';
export { pickup } from './pickup.ts';
export { listQueue, listQueueIds, isLocked, readData, type QueueListing } from './scan.ts';
