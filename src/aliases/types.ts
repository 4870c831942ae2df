// What alias expansion hands to delivery: one Destination per final target.
// CONTRACT between src/aliases (producer) and src/deliver (consumer).

import type { User } from '../config/users.ts';
import type { DeliveryStatus } from '../message/status.ts';

interface Common {
  /**
   * Stable key naming this final target, used to cross a target off in the
   * queue file once delivered, e.g. "local:alice", "file:/var/log/x",
   * "prog:nobody:/usr/bin/foo", "remote:bob@example.org".
   */
  key: string;
  /** Envelope recipient as given by the sender, before expansion. */
  original: string;
  /** Where errors go instead of the envelope sender (owner-LIST), if anywhere. */
  errorsTo?: string;
}

export type Destination =
  | (Common & { kind: 'local'; user: User; address: string })
  | (Common & { kind: 'program'; command: string; runAs: User })
  | (Common & { kind: 'file'; path: string; runAs: User })
  | (Common & { kind: 'remote'; address: string })
  /** A mailing list's address (src/lists), handled by the queue runner itself. */
  | (Common & { kind: 'list'; address: string })
  | (Common & { kind: 'error'; address: string; status: DeliveryStatus });
