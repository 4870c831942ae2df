// The mailing lists' public face (mailtk-list(5)): routing a recipient to a
// list's address, handling mail to it in the queue runner, the runner's
// periodic expiry, and the changes `mailtk list` makes. Only this module reads or writes list_dir.
export { routeList, roleAddress, verpTail, listId, type ListAddress, type ListRole } from './route.ts';
export { expireLists } from './expire.ts';
export { deliverToList, commandsOf, type ListMail, type ListOutcome } from './handle.ts';
export { addMember, addMembers, removeMember, memberAddress } from './members.ts';
export { failedRecipients } from './dsn-parse.ts';
export {
  allLists,
  listExists,
  isListName,
  makeListDir,
  newSecret,
  readBounces,
  readMembers,
  readSettings,
  writeSettings,
  writeMembers,
  heldTokens,
  unsubscribeToken,
  listPath,
  withListLock,
  type ListSettings,
  type Policy,
  type NonMember,
  type Member,
} from './store.ts';
