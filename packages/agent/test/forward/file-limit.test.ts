import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileLimitWarning } from '../../src/forward/file-limit.js';

const limits = (soft: number): string =>
  `Limit                     Soft Limit           Hard Limit           Units\nMax open files            ${soft}                 524288               files\n`;

test('warns when the soft open-file limit is below 2 descriptors a connection plus slack', () => {
  assert.match(
    fileLimitWarning(limits(1024), 4096) ?? '',
    /open-file limit 1024 < .* = 8292; set LimitNOFILE=/,
  );
  assert.equal(fileLimitWarning(limits(8292), 4096), undefined);
  assert.equal(fileLimitWarning('', 4096), undefined, 'no /proc: no warning');
});
