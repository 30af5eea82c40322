import { createServer } from 'node:net';

/**
 * Asks the kernel for a free TCP port on `host`. Another process could take it before the caller
 * binds it; for child processes that take a port number on their command line there is no better way.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() => {
        if (address === null || typeof address === 'string') reject(new Error('no port assigned'));
        else resolve(address.port);
      });
    });
  });
}
