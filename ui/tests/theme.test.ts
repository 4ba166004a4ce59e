import { beforeEach, describe, expect, it } from 'vitest';
import { applyTheme, parseTheme, rememberedTheme } from '../src/lib/theme';

describe('theme', () => {
  beforeEach(() => {
    localStorage.clear();
    delete document.documentElement.dataset.theme;
  });

  it('forces light or dark with data-theme and follows the system otherwise', () => {
    applyTheme('dark');
    expect(document.documentElement.dataset.theme).toBe('dark');
    applyTheme('light');
    expect(document.documentElement.dataset.theme).toBe('light');
    applyTheme('system');
    expect(document.documentElement.hasAttribute('data-theme')).toBe(false);
  });

  it('remembers the last one for the sign-in screen', () => {
    expect(rememberedTheme()).toBe('system');
    applyTheme('dark');
    expect(rememberedTheme()).toBe('dark');
    applyTheme('system');
    expect(rememberedTheme()).toBe('system');
  });

  it('reads an unknown value as system', () => {
    expect(parseTheme('light')).toBe('light');
    expect(parseTheme('solarized')).toBe('system');
    expect(parseTheme(null)).toBe('system');
  });
});
