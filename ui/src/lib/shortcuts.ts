// Window-level shortcuts: `?` for the sheet, `g` then a letter to go somewhere, `/` to search,
// `n` for new. Ignored while typing in a field or while a dialog is open.

export interface ShortcutActions {
  help: () => void;
  go: (path: string) => void;
  search: () => void;
  create: () => void;
}

const GO: Record<string, string> = {
  c: '/cases',
  e: '/evidence',
  w: '/wallet',
  q: '/queue',
  u: '/users',
  s: '/settings',
  a: '/account',
};

function typing(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  return target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName);
}

export function installShortcuts(actions: ShortcutActions): () => void {
  let pendingG = 0;
  function onKey(e: KeyboardEvent) {
    if (e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented) return;
    if (typing(e.target) || document.querySelector('dialog[open]')) return;
    if (pendingG && Date.now() - pendingG < 1500) {
      pendingG = 0;
      const path = GO[e.key];
      if (path) {
        e.preventDefault();
        actions.go(path);
      }
      return;
    }
    switch (e.key) {
      case '?':
        e.preventDefault();
        actions.help();
        break;
      case 'g':
        pendingG = Date.now();
        break;
      case '/':
        e.preventDefault();
        actions.search();
        break;
      case 'n':
        actions.create();
        break;
    }
  }
  window.addEventListener('keydown', onKey);
  return () => window.removeEventListener('keydown', onKey);
}

/** Screens register what `n` and `/` do while they are shown. */
export const screenShortcuts: { create: (() => void) | null; search: (() => void) | null } = { create: null, search: null };
