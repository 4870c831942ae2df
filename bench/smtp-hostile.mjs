// The hostile side of bench/smtp-hostile.sh: COUNT sockets to 127.0.0.1:PORT
// from ADDRESSES loopback addresses (127.1.k.1, one /24 each), held open,
// sending nothing. Whatever the server writes is read and dropped, so that a
// close is seen; with RECONNECT_MS > 0 a closed socket is opened again after
// that long (an attacker who keeps coming back), with 0 it stays closed.
// Prints "ready N" once the first COUNT connects are done, and on SIGTERM a
// line of counts: "hostile connects=.. closed_by_server=.. open=..".
// Loopback only. Usage: node bench/smtp-hostile.mjs PORT [COUNT] [ADDRESSES] [RECONNECT_MS]

import net from 'node:net';

const [port, count = 1000, addresses = 200, reconnectMs = 0] = process.argv.slice(2).map(Number);
if (!port) {
  console.error('usage: node bench/smtp-hostile.mjs PORT [COUNT] [ADDRESSES] [RECONNECT_MS]');
  process.exit(64);
}
let connects = 0;
let closed = 0;
let open = 0;
let stopping = false;

function hold(localAddress) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress });
    let connected = false;
    s.on('connect', () => {
      connected = true;
      connects++;
      open++;
      resolve();
    });
    s.on('data', () => undefined);
    s.on('error', () => resolve());
    s.on('close', () => {
      if (connected) {
        closed++;
        open--;
      }
      if (!stopping && reconnectMs > 0) setTimeout(() => void hold(localAddress), reconnectMs);
    });
  });
}

const BATCH = 200;
for (let i = 0; i < count; i += BATCH) {
  await Promise.all(Array.from({ length: Math.min(BATCH, count - i) }, (_, j) => hold(`127.1.${(i + j) % addresses}.1`)));
}
console.log(`ready ${open}`);
const keep = setInterval(() => undefined, 1 << 30);
process.on('SIGTERM', () => {
  stopping = true;
  clearInterval(keep);
  console.log(`hostile connects=${connects} closed_by_server=${closed} open=${open}`);
  process.exit(0);
});
