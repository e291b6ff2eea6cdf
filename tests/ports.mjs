// Free loopback ports for the test harnesses (tests/e2e-ts, the conformance harness).
//
// A port from listen(0) is given back at once and may become the source port of some test's next
// connection before the server binds it (EADDRINUSE). Below the kernel's ephemeral range only
// explicit binds compete.

import fs from 'node:fs';
import net from 'node:net';

function tryListen(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', () => resolve(null));
    srv.listen(port, '127.0.0.1', () => {
      const got = srv.address().port;
      srv.close(() => resolve(got));
    });
  });
}

export async function freePort() {
  let top = 32768;
  try {
    top = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0]) || top;
  } catch {
    // not Linux: any port
  }
  const bottom = 20000;
  for (let i = 0; top > bottom + 1000 && i < 200; i++) {
    const port = await tryListen(bottom + Math.floor(Math.random() * (top - bottom)));
    if (port !== null) return port;
  }
  const port = await tryListen(0);
  if (port === null) throw new Error('no free port');
  return port;
}
