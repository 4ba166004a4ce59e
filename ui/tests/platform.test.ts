import { describe, expect, it } from 'vitest';
import { baseUrlFor, detectTransport } from '../src/lib/platform';

describe('base URL per transport', () => {
  it('uses the page origin in a browser', () => {
    expect(baseUrlFor('browser', 'http://127.0.0.1:5050')).toBe('http://127.0.0.1:5050/');
  });

  it('uses the casewire scheme in the desktop app, whatever the page origin', () => {
    expect(baseUrlFor('desktop', 'tauri://localhost', () => 'casewire://localhost/')).toBe('casewire://localhost/');
    expect(baseUrlFor('desktop', 'http://tauri.localhost', () => 'http://casewire.localhost')).toBe('http://casewire.localhost/');
  });

  it('detects the desktop shell by its internals object', () => {
    expect(detectTransport({ __TAURI_INTERNALS__: {} })).toBe('desktop');
    expect(detectTransport({})).toBe('browser');
    expect(detectTransport(undefined)).toBe('browser');
  });
});
