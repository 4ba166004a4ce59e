import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

// A plain stub rather than vi.fn: vitest tracks a mock's promises and would report the shell's
// rejection as unhandled even though saveText catches it.
type Impl = (cmd: string, args?: unknown) => Promise<unknown>;
const invoke = {
  calls: [] as [string, unknown][],
  impl: (async () => undefined) as Impl,
  mockReset() {
    this.calls = [];
    this.impl = async () => undefined;
  },
  mockImplementation(fn: Impl) {
    this.impl = fn;
  },
  mockResolvedValue(value: unknown) {
    this.impl = async () => value;
  },
};
vi.mock('@tauri-apps/api/core', () => ({
  invoke: (cmd: string, args?: unknown) => {
    invoke.calls.push([cmd, args]);
    return invoke.impl(cmd, args);
  },
  convertFileSrc: () => 'casewire://localhost/',
}));
vi.mock('@tauri-apps/api/event', () => ({ listen: vi.fn(async () => () => {}) }));

async function platformIn(where: 'desktop' | 'browser') {
  vi.resetModules();
  const win = window as unknown as Record<string, unknown>;
  if (where === 'desktop') win.__TAURI_INTERNALS__ = {};
  else delete win.__TAURI_INTERNALS__;
  return import('../src/lib/platform');
}

describe('saving an export', () => {
  beforeEach(() => invoke.mockReset());
  afterEach(() => {
    delete (window as unknown as Record<string, unknown>).__TAURI_INTERNALS__;
    vi.restoreAllMocks();
  });

  it('desktop: asks the shell for a path, then has it write the text', async () => {
    const { saveText } = await platformIn('desktop');
    invoke.mockImplementation(async (cmd: string) => (cmd === 'pick_save_path' ? { handle: 'h-1', name: 'mine.json' } : undefined));
    await expect(saveText('{"a":1}', 'casewire-queue.json')).resolves.toBe('mine.json');
    expect(invoke.calls).toEqual([
      ['pick_save_path', { suggestedName: 'casewire-queue.json' }],
      ['save_text', { handle: 'h-1', text: '{"a":1}' }],
    ]);
  });

  it('desktop: a cancelled dialog writes nothing', async () => {
    const { saveText } = await platformIn('desktop');
    invoke.mockResolvedValue(null);
    await expect(saveText('x', 'a.json')).resolves.toBeNull();
    expect(invoke.calls).toHaveLength(1);
  });

  it("desktop: the shell's refusal becomes an error with its reason", async () => {
    const { saveText } = await platformIn('desktop');
    const { ShellError, describeError } = await import('../src/lib/errors');
    invoke.mockImplementation(async (cmd: string) => {
      if (cmd === 'pick_save_path') return { handle: 'h-2', name: 'a.json' };
      throw 'permission denied: /root/a.json';
    });
    const error = await saveText('x', 'a.json').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ShellError);
    const text = describeError(error);
    expect(text.code).toBe('shell');
    expect(text.detail).toBe('permission denied: /root/a.json');
  });

  it('browser: a blob link, no shell', async () => {
    const { saveText } = await platformIn('browser');
    const clicked: string[] = [];
    vi.spyOn(HTMLAnchorElement.prototype, 'click').mockImplementation(function (this: HTMLAnchorElement) {
      clicked.push(this.download);
    });
    await expect(saveText('x', 'b.json')).resolves.toBe('b.json');
    expect(clicked).toEqual(['b.json']);
    expect(invoke.calls).toHaveLength(0);
  });
});

describe('copying', () => {
  afterEach(() => vi.restoreAllMocks());
  const setClipboard = (value: unknown) => Object.defineProperty(navigator, 'clipboard', { value, configurable: true });
  const setExec = (fn: (() => boolean) | undefined) => Object.defineProperty(document, 'execCommand', { value: fn, configurable: true, writable: true });

  it('uses the async clipboard where there is one', async () => {
    const { copyText } = await platformIn('browser');
    const writeText = vi.fn(async () => {});
    setClipboard({ writeText });
    await expect(copyText('abc')).resolves.toBe(true);
    expect(writeText).toHaveBeenCalledWith('abc');
  });

  it('falls back on a hidden textarea and execCommand, and leaves nothing behind', async () => {
    const { copyText } = await platformIn('browser');
    setClipboard(undefined);
    let selected = '';
    setExec(() => {
      const area = document.querySelector<HTMLTextAreaElement>('textarea.clipboard-helper');
      selected = area ? area.value.slice(area.selectionStart, area.selectionEnd) : '';
      return true;
    });
    await expect(copyText('0xdeadbeef')).resolves.toBe(true);
    expect(selected).toBe('0xdeadbeef');
    expect(document.querySelector('textarea.clipboard-helper')).toBeNull();
  });

  it('falls back when the clipboard refuses, and says so when both fail', async () => {
    const { copyText } = await platformIn('browser');
    setClipboard({ writeText: vi.fn(async () => { throw new DOMException('denied', 'NotAllowedError'); }) });
    setExec(() => false);
    await expect(copyText('x')).resolves.toBe(false);
    setExec(() => true);
    await expect(copyText('x')).resolves.toBe(true);
  });
});
