// The queue's public face: only src/queue touches the spool directory.
export { newQueueId, isQueueId, type QueueId } from './id.ts';
export { type QueueState, TRANSITIONS } from './state.ts';
export { type Control, type Recipient, type Placement, newControl, parseNotify, placedKey } from './control.ts';
export { enqueue, dropMessage, mayWriteQueue, ensureQueueDirs, type NewMessage } from './enqueue.ts';
export { activate, crossOff, recordPlacement, defer, finish, finishAll, hold, unhold, quarantine, type ActiveEntry } from './transition.ts';
export { pickup } from './pickup.ts';
export { listQueue, listQueueIds, isLocked, readData, type QueueListing } from './scan.ts';
export { CommitLog, recoverCommitLog } from './commit-log.ts';
export { processAlive } from './files.ts';
export { lockOwned } from './files.ts';
