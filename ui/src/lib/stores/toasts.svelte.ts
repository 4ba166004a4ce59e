import { describeError, type ErrorText } from '../errors';

export interface Toast {
  id: number;
  kind: 'success' | 'error' | 'info';
  text: string;
  error?: ErrorText;
}

let next = 1;

class Toasts {
  items = $state<Toast[]>([]);

  push(kind: Toast['kind'], text: string, error?: ErrorText): void {
    // Group: the same message again replaces the older one instead of stacking.
    this.items = [...this.items.filter((t) => t.text !== text), { id: next++, kind, text, ...(error ? { error } : {}) }].slice(-3);
    const id = next - 1;
    if (kind !== 'error') setTimeout(() => this.dismiss(id), 5000);
  }

  success(text: string): void {
    this.push('success', text);
  }

  error(error: unknown): void {
    const described = describeError(error);
    if (described.code === 'unauthenticated') return; // the sign-in screen says it
    this.push('error', described.title, described);
  }

  dismiss(id: number): void {
    this.items = this.items.filter((t) => t.id !== id);
  }
}

export const toasts = new Toasts();
