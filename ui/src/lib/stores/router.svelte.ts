// Hash routing: `#/cases/CASE-2026-001`, `#/evidence?wallet=0x…`.

export type Route =
  | { screen: 'cases' }
  | { screen: 'case'; id: string }
  | { screen: 'evidence'; caseId: string | null; wallet: string | null }
  | { screen: 'evidenceItem'; id: string }
  | { screen: 'wallet'; wallet: string | null }
  | { screen: 'queue' }
  | { screen: 'users' }
  | { screen: 'settings' }
  | { screen: 'account' }
  | { screen: 'notFound' };

export function parseHash(hash: string): Route {
  const raw = hash.replace(/^#/, '') || '/cases';
  const [pathPart = '', queryPart = ''] = raw.split('?', 2);
  const query = new URLSearchParams(queryPart);
  const parts = pathPart.split('/').filter(Boolean).map((p) => decodeURIComponent(p));
  const [first, second] = parts;
  switch (first) {
    case undefined:
    case 'cases':
      return second ? { screen: 'case', id: second } : { screen: 'cases' };
    case 'evidence':
      return second ? { screen: 'evidenceItem', id: second } : { screen: 'evidence', caseId: query.get('case'), wallet: query.get('wallet') };
    case 'wallet':
      return { screen: 'wallet', wallet: second ?? query.get('wallet') };
    case 'queue':
    case 'users':
    case 'settings':
    case 'account':
      return parts.length === 1 ? { screen: first } : { screen: 'notFound' };
    default:
      return { screen: 'notFound' };
  }
}

class Router {
  route = $state<Route>(parseHash(typeof location === 'undefined' ? '' : location.hash));

  constructor() {
    if (typeof window !== 'undefined') {
      window.addEventListener('hashchange', () => {
        this.route = parseHash(location.hash);
      });
    }
  }

  get section(): string {
    const s = this.route.screen;
    if (s === 'case') return 'cases';
    if (s === 'evidenceItem') return 'evidence';
    return s;
  }
}

export const router = new Router();

export function href(path: string): string {
  return `#${path}`;
}

export function navigate(path: string): void {
  location.hash = `#${path}`;
}
