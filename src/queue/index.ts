// The queue's public face: only src/queue touches the spool directory.
export { newQueueId, isQueueId, type QueueId } from './id.ts';
export { type QueueState, TRANSITIONS } from './state.ts';
export { type Control, type Recipient, type Placement, newControl, parseNotify, placedKey } from './control.ts';
export { enqueue, dropMessage, mayWriteQueue, ensureQueueDirs, type NewMessage } from './enqueue.ts';
export { activate, discardEntry, crossOff, recordPlacement, defer, finish, finishAll, hold, unhold, remove, makeDue, holdDir, quarantine, corruptEntries, type ActiveEntry, type Deferral, type AdminOutcome, type RemovedFrom } from './transition.ts';
export { DamagedEntry } from './entry-file.ts';
export { pickup } from './pickup.ts';
export { listQueue, eachQueueEntry, listQueueIds, dueQueueIds, scanQueue, isLocked, readData, findEntry, countQueue, type QueueListing, type FoundEntry, type QueueCounts } from './scan.ts';
export { lockOwned } from './files.ts';
export { steps, step, type Step } from './steps.ts';
