import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ForwarderStats } from '../../src/forward/forwarder.js';
import {
  createStatusReporter,
  createSystemdNotifier,
  describeStatus,
  type SystemdMessage,
} from '../../src/forward/systemd-status.js';

const upstream = (healthy: boolean, listed = true) => ({
  upstream: '10.0.0.1:6443',
  healthy,
  listed,
  activeConnections: 0,
  totalConnections: 0,
  connectErrors: 0,
  bytesIn: 0,
  bytesOut: 0,
});

describe('systemd status', () => {
  it('counts healthy among listed upstreams only', () => {
    const stats: ForwarderStats = {
      activeConnections: 3,
      acceptedConnections: 9,
      failedConnections: 0,
      healthyUpstreams: 1,
      upstreams: [upstream(true), upstream(false), upstream(true, false)],
    };
    assert.equal(describeStatus(stats), '3 active connections, 1/2 upstreams healthy');
  });

  it('sends READY=1 once, then STATUS= only when it changed, then draining', () => {
    const sent: SystemdMessage[] = [];
    let stats: ForwarderStats = {
      activeConnections: 0,
      acceptedConnections: 0,
      failedConnections: 0,
      healthyUpstreams: 1,
      upstreams: [upstream(true)],
    };
    const reporter = createStatusReporter(
      (m) => sent.push(m),
      () => stats,
    );
    reporter.ready();
    reporter.update();
    stats = { ...stats, activeConnections: 2 };
    reporter.update();
    reporter.draining();
    assert.deepEqual(sent, [
      { ready: true, status: '0 active connections, 1/1 upstreams healthy' },
      { status: '2 active connections, 1/1 upstreams healthy' },
      { status: 'draining' },
    ]);
  });

  it('stays silent outside systemd (NOTIFY_SOCKET unset or empty)', () => {
    const calls: SystemdMessage[] = [];
    for (const env of [{}, { NOTIFY_SOCKET: '' }]) {
      const notify = createSystemdNotifier({
        env,
        notifySystemd: (m) => {
          calls.push(m);
          return Promise.resolve();
        },
        stderr: () => undefined,
      });
      notify({ ready: true, status: 'x' });
    }
    assert.deepEqual(calls, []);
  });
});
