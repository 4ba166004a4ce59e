import assert from 'node:assert/strict';
import { join } from 'node:path';
import { AxeBuilder } from '@axe-core/playwright';
import { SHOTS, ensureDir } from './lib.mjs';

/** No serious or critical axe violation on the page as it is now. */
export async function checkA11y(page, label) {
  const result = await new AxeBuilder({ page }).analyze();
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  const text = bad.map((v) => `${v.id} (${v.impact}): ${v.help}\n    ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join('\n    ')}`).join('\n  ');
  assert.equal(bad.length, 0, `axe on ${label}:\n  ${text}`);
}

export async function shoot(page, name, scheme) {
  await ensureDir(SHOTS);
  await page.screenshot({ path: join(SHOTS, `${name}-${scheme}.png`), fullPage: true });
}
