import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { describe, it } from 'node:test';
import { isPortTaken, parseListeningSockets } from '../../src/node/listening-ports.js';

const SAMPLE = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:2816 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: C7C7C70A:01BB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
   2: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0
`;

describe('parseListeningSockets', () => {
  it('decodes little-endian addresses and hex ports, listening sockets only', () => {
    assert.deepEqual(parseListeningSockets(SAMPLE), [
      { address: '127.0.0.1', port: 10262 },
      { address: '10.199.199.199', port: 443 },
    ]);
  });

  it('treats wildcard listeners as covering every address', () => {
    const sockets = [
      { address: '0.0.0.0', port: 10250 },
      { address: '::', port: 443 },
    ];
    assert.equal(isPortTaken(sockets, '127.0.0.1', 10250), true);
    assert.equal(isPortTaken(sockets, '10.199.199.199', 443), true);
    assert.equal(isPortTaken(sockets, '127.0.0.1', 10248), false);
  });

  it('sees a real listener of this process in /proc/net/tcp', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    assert.ok(address !== null && typeof address !== 'string');
    const sockets = parseListeningSockets(readFileSync('/proc/net/tcp', 'utf8'));
    assert.equal(isPortTaken(sockets, '127.0.0.1', address.port), true);
    await new Promise((resolve) => server.close(resolve));
    assert.equal(
      isPortTaken(parseListeningSockets(readFileSync('/proc/net/tcp', 'utf8')), '127.0.0.1', address.port),
      false,
    );
  });
});
