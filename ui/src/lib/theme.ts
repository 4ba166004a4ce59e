// The colour scheme: `system` follows prefers-color-scheme (no attribute); `light` and `dark`
// force it with `data-theme` on <html>. Remembered on this machine so the sign-in screen (before
// preferences can be read) already has it.
export type Theme = 'system' | 'light' | 'dark';

const KEY = 'casewire.theme';

export function parseTheme(value: unknown): Theme {
  return value === 'light' || value === 'dark' ? value : 'system';
}

export function applyTheme(theme: Theme, root: HTMLElement = document.documentElement): void {
  if (theme === 'system') delete root.dataset.theme;
  else root.dataset.theme = theme;
  try {
    if (theme === 'system') localStorage.removeItem(KEY);
    else localStorage.setItem(KEY, theme);
  } catch {
    // Storage refused (private mode): the theme applies to this page only.
  }
}

/** The theme last applied on this machine. */
export function rememberedTheme(): Theme {
  try {
    return parseTheme(localStorage.getItem(KEY));
  } catch {
    return 'system';
  }
}
